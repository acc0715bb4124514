"""Normalization schemes: which conv, norm, activation scaling and initialization a network uses.

The study's networks differ only in these choices, so they live here once and the residual skeleton asks the
scheme for its layers:

* ``batchnorm``: plain conv, BatchNorm after every conv, He (MSR) init (Shang et al.; fb.resnet.torch).
* ``none``: plain conv, no normalization, Xavier init (Shang et al.'s "plain" rows).
* ``normprop``: `NormPropConv2d`, no BatchNorm in the branch, BatchNorm on the identity path only where the
  spatial size is reduced (Shang et al., footnote 2), Xavier init; version 1 adds NormProp's constants to
  every activation.
* ``scaled_ws``: Scaled Weight Standardization (`ScaledStdConv2d`: timm's layer plus an eval cache), no
  normalization, activations scaled by the gain gamma of `ACT_GAINS` (Brock et al. 2021). `gamma_in_conv=True`
  reproduces timm's `NormFreeNet`, which folds gamma into the weight scale of *every* conv, the stem's included.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch.nn as nn

from .activations import act_gain, check_choice, create_act
from .normprop import NORMPROP_VERSIONS, NormPropConv2d, normprop_act_kwargs
from .std_conv import ScaledStdConv2d

__all__ = ['NormScheme', 'NORMS', 'NF_NORM']

NORMS: Tuple[str, ...] = ('batchnorm', 'none', 'normprop')  # the choices of the CReLU / NormProp families
NF_NORM = 'scaled_ws'


@dataclass(frozen=True)
class NormScheme:
    """Layer factory of one normalization scheme.

    Args:
        name: One of 'batchnorm', 'none', 'normprop', 'scaled_ws'.
        conv_bias: Give branch convs a bias; None picks the scheme's default (no bias before BatchNorm, a bias
            otherwise: the "plain" rows of Shang et al. Table 2 have one, NormProp's beta is one).
        normprop_version: 1, 2 or 3 (only used by 'normprop').
        ws_eps: Epsilon added to the weight variance by scaled WS.
        gamma_in_conv: scaled_ws only: fold the activation gain into every conv's weight scale as timm does,
            instead of scaling the activations as the paper does.
    """
    name: str
    conv_bias: Optional[bool] = None
    normprop_version: int = 2
    ws_eps: float = 1e-5
    gamma_in_conv: bool = False

    def __post_init__(self):
        check_choice('norm', self.name, NORMS + (NF_NORM,))
        check_choice('normprop_version', self.normprop_version, NORMPROP_VERSIONS)

    @property
    def bias(self) -> bool:
        return self.name != 'batchnorm' if self.conv_bias is None else self.conv_bias

    def conv(
            self,
            in_chs: int,
            out_chs: int,
            kernel_size: int,
            stride: int = 1,
            groups: int = 1,
            act_name: str = 'relu',
            gain_init: float = 1.0,
    ) -> nn.Module:
        """A conv of this scheme with symmetric 'same' padding.

        `act_name` only matters for timm's gamma folding and `gain_init` only for scaled WS convs.
        """
        padding = ((stride - 1) + (kernel_size - 1)) // 2
        kw = dict(stride=stride, padding=padding, groups=groups, bias=self.bias)
        if self.name == 'normprop':
            return NormPropConv2d(in_chs, out_chs, kernel_size, version=self.normprop_version, **kw)
        if self.name == NF_NORM:
            gamma = act_gain(act_name) if self.gamma_in_conv else 1.0
            return ScaledStdConv2d(
                in_chs, out_chs, kernel_size, gamma=gamma, eps=self.ws_eps, gain_init=gain_init, **kw)
        return nn.Conv2d(in_chs, out_chs, kernel_size, **kw)

    def norm(self, chs: int) -> nn.Module:
        """The normalization after a branch conv."""
        return nn.BatchNorm2d(chs) if self.name == 'batchnorm' else nn.Identity()

    def shortcut_norm(self, chs: int, stride: int, projection: bool = True) -> nn.Module:
        """The normalization on a shortcut where shapes change.

        BatchNorm networks normalize their 1x1 projections (fb.resnet.torch option B) but not the parameter-free
        option A shortcut; NormProp networks put BatchNorm on the identity path exactly where the spatial size
        is reduced (Shang et al., footnote 2), whatever the shortcut type.
        """
        if (self.name == 'batchnorm' and projection) or (self.name == 'normprop' and stride > 1):
            return nn.BatchNorm2d(chs)
        return nn.Identity()

    def act(self, act_name: str, inplace: bool = False) -> nn.Module:
        """An activation with the scheme's correction: gamma (NF, paper form) or NormProp's constants (v1)."""
        if self.name == NF_NORM and not self.gamma_in_conv:
            return create_act(act_name, gain=act_gain(act_name), inplace=inplace)
        if self.name == 'normprop':
            return create_act(act_name, inplace=inplace, **normprop_act_kwargs(self.normprop_version))
        return create_act(act_name, inplace=inplace)

    def init_weights(self, module: nn.Module) -> None:
        """Initialize conv/linear/norm weights as the papers say (gains and skip gains are set by their layers)."""
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                if self.name == 'batchnorm':
                    nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')  # MSR init, fb.resnet.torch
                elif self.name == NF_NORM:
                    nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='linear')  # as timm's NormFreeNet
                else:
                    nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                if self.name == NF_NORM:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                elif self.name != 'batchnorm':
                    nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

