"""NormProp convolution: per-filter weight normalization with a gain gamma and bias beta.

`Normalization Propagation` (Arpit et al., ICML 2016) and its ResNet variants of `Exploring Normalization in
Deep Residual Networks with Concatenated Rectified Linear Units` (Shang, Chiu & Sohn, AAAI 2017):

* NormProp (version 1): ``c1 * (relu(gamma * (W x) / ||W||_2 + beta) - c0)``; the conv computes the inner
  ``gamma * (W x) / ||W||_2 + beta`` and the activation applies the constants (see `normprop_act_kwargs`).
* NormProp2 (version 2): the constants dropped, ``relu(gamma * (W x) / ||W||_2 + beta)`` (= Weight Normalization).
* NormProp3 (version 3): NormProp2 with gamma fixed at 1/1.21 (a buffer, not a parameter).

``||W||_2`` is the norm of each whole flattened filter (over input channels and kernel positions).
"""
from typing import Dict, Tuple, Union

import torch
import torch.nn as nn

from .activations import NORMPROP_C0, NORMPROP_C1, check_choice
from .effective_weight import EffectiveWeightConv

__all__ = ['NormPropConv2d', 'NORMPROP_VERSIONS', 'NORMPROP_GAMMA_INIT', 'normprop_act_kwargs']

NORMPROP_VERSIONS: Tuple[int, ...] = (1, 2, 3)
# Initial (v1, v2) or fixed (v3) value of gamma suggested by Arpit et al. and used by Shang et al. for NormProp3.
NORMPROP_GAMMA_INIT: float = 1.0 / 1.21


def normprop_act_kwargs(version: int) -> Dict[str, float]:
    """Gain/shift of the activation that follows a NormProp conv: the constants only in the original version."""
    check_choice('normprop_version', version, NORMPROP_VERSIONS)
    return dict(gain=NORMPROP_C1, shift=NORMPROP_C0) if version == 1 else dict(gain=1.0, shift=0.0)


class NormPropConv2d(EffectiveWeightConv):
    """Conv2d whose filters are normalized to unit L2 norm and scaled by a per-filter gamma.

    Args:
        in_channels: Input channels.
        out_channels: Output channels (filters).
        kernel_size: Kernel size.
        stride: Stride.
        padding: Padding; None gives 'same'-style symmetric padding ``((stride - 1) + dilation * (k - 1)) // 2``.
        dilation: Dilation.
        groups: Groups.
        bias: Learn beta (the bias); NormProp always has one, `False` is for ablations.
        version: 1 (NormProp), 2 (NormProp2) or 3 (NormProp3: gamma fixed).
        eps: Floor on the filter norm, only to avoid a division by zero for an all-zero filter.
    """

    def __init__(
            self,
            in_channels: int,
            out_channels: int,
            kernel_size: Union[int, Tuple[int, int]],
            stride: int = 1,
            padding: Union[int, None] = None,
            dilation: int = 1,
            groups: int = 1,
            bias: bool = True,
            version: int = 2,
            eps: float = 1e-12,
            device=None,
            dtype=None,
    ):
        check_choice('normprop_version', version, NORMPROP_VERSIONS)
        if padding is None:
            k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
            padding = ((stride - 1) + dilation * (k - 1)) // 2
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, bias=bias, device=device, dtype=dtype)
        self.version = version
        self.eps = eps
        gamma = torch.full((out_channels,), NORMPROP_GAMMA_INIT, device=device, dtype=dtype)
        if version == 3:
            # NormProp3 treats gamma as a hyper-parameter: a buffer keeps it out of the optimizer and in the state dict.
            self.register_buffer('gamma', gamma)
        else:
            self.gamma = nn.Parameter(gamma)

    def effective_weight(self, scale: float = 1.0) -> torch.Tensor:
        """``gamma * W / ||W||_2`` per filter, the weight the convolution actually applies, times `scale`."""
        norm = torch.linalg.vector_norm(self.weight.flatten(1), dim=1).clamp_min(self.eps)
        factor = self.gamma / norm if scale == 1.0 else self.gamma * scale / norm
        return self.weight * factor.view(-1, 1, 1, 1)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', version={self.version}'
