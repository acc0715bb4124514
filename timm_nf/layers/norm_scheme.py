"""Normalization schemes: which conv, norm, activation scaling and initialization a network uses.

The study's networks differ only in these choices, so they live here once and the residual skeleton asks the
scheme for its layers:

* ``batchnorm``: plain conv, BatchNorm after every conv, He (MSR) init (Shang et al.; fb.resnet.torch).
* ``none``: plain conv, no normalization (Shang et al.'s "plain" rows), initialized by `weight_init`.
* ``normprop``: `NormPropConv2d`, no BatchNorm in the branch, BatchNorm on the identity path only where the
  spatial size is reduced (Shang et al., footnote 2), initialized by `weight_init`; version 1 adds NormProp's
  constants to the activations (`normprop_consts` says which).
* ``scaled_ws``: Scaled Weight Standardization (`ScaledStdConv2d`: timm's layer, foldable), no
  normalization, activations scaled by the gain gamma of `ACT_GAINS` (Brock et al. 2021). `gamma_in_conv=True`
  reproduces timm's `NormFreeNet`, which folds gamma into the weight scale of *every* conv, the stem's included.
"""
import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from .activations import act_gain, check_choice, create_act
from .normprop import NORMPROP_VERSIONS, NormPropConv2d, normprop_act_kwargs
from .std_conv import ScaledStdConv2d

__all__ = [
    'NormScheme', 'NORMS', 'NF_NORM', 'WEIGHT_INITS', 'DEFAULT_WEIGHT_INIT', 'NORMPROP_CONSTS',
    'DEFAULT_NORMPROP_CONSTS', 'init_unnormalized_',
]

NORMS: Tuple[str, ...] = ('batchnorm', 'none', 'normprop')  # the choices of the CReLU / NormProp families
NF_NORM = 'scaled_ws'

# Initializations of the layers of networks without BatchNorm. Shang et al. say "Xavier"; their code base
# (fb.resnet.torch, Torch7) admits several readings, measured in docs/REPRODUCTION.md ("Design choices the paper
# leaves open"):
#   xavier_normal   PyTorch's Glorot normal, std sqrt(2 / (fan_in + fan_out)), zero biases.
#   torch7_default  Torch7's `reset()` of nn.SpatialConvolution / nn.Linear (torch/nn): weights and biases
#                   uniform in +-1/sqrt(fan_in), variance 1 / (3 fan_in); PyTorch's `reset_parameters()` alike.
#   torch7_xavier   e-lab torch-toolbox weight-init.lua 'xavier': `m:reset(sqrt(2 / (fan_in + fan_out)))`;
#                   Torch7's `reset(stdv)` draws uniform in +-stdv * sqrt(3), so weights *and* biases get
#                   Glorot's variance.
#   msr             fb.resnet.torch's init of its BatchNorm ResNets: normal, std sqrt(2 / (k * k * out)), zero
#                   biases; the classifier keeps Torch7's default weights with a zero bias.
WEIGHT_INITS: Tuple[str, ...] = ('xavier_normal', 'torch7_default', 'torch7_xavier', 'msr')
# The measured defaults per scheme (docs/REPRODUCTION.md, "Initialization of the layers without BatchNorm").
DEFAULT_WEIGHT_INIT: Dict[str, str] = {'none': 'torch7_default', 'normprop': 'xavier_normal'}
# Where NormProp (version 1) applies its constants c1 * (relu(.) - c0): after 'all' activations (branch, stem and
# the one after the residual addition), or only after those that follow a NormProp 'conv' (branch and stem; the
# activation after the addition is a plain ReLU, as in NormProp2).
NORMPROP_CONSTS: Tuple[str, ...] = ('all', 'conv')
DEFAULT_NORMPROP_CONSTS = 'conv'  # measured: docs/REPRODUCTION.md, "Where NormProp applies its constants"


def _fans(weight: torch.Tensor) -> Tuple[int, int]:
    """(fan_in, fan_out) as Torch7 counts them: input / output planes times the kernel area."""
    receptive = weight[0, 0].numel() if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def init_unnormalized_(module: nn.Module, method: str) -> None:
    """Initialize a conv or linear layer of a network without BatchNorm by `method` (one of `WEIGHT_INITS`)."""
    check_choice('weight_init', method, WEIGHT_INITS)
    fan_in, fan_out = _fans(module.weight)
    bias = module.bias
    if method in ('torch7_default', 'torch7_xavier'):
        std = math.sqrt(1.0 / (3 * fan_in)) if method == 'torch7_default' else math.sqrt(2.0 / (fan_in + fan_out))
        bound = std * math.sqrt(3.0)
        nn.init.uniform_(module.weight, -bound, bound)
        if bias is not None:
            nn.init.uniform_(bias, -bound, bound)
        return
    if method == 'xavier_normal':
        nn.init.xavier_normal_(module.weight)
    elif isinstance(module, nn.Linear):  # msr: fb.resnet.torch leaves its classifier at Torch7's default
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(module.weight, -bound, bound)
    else:
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
    if bias is not None:
        nn.init.zeros_(bias)


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
        weight_init: 'none' and 'normprop' only: initialization of convs and classifier (`WEIGHT_INITS`); None
            takes the scheme's measured default (`DEFAULT_WEIGHT_INIT`).
        normprop_consts: 'normprop' version 1 only: which activations carry NormProp's constants
            (`NORMPROP_CONSTS`).
    """
    name: str
    conv_bias: Optional[bool] = None
    normprop_version: int = 2
    ws_eps: float = 1e-5
    gamma_in_conv: bool = False
    weight_init: Optional[str] = None
    normprop_consts: str = DEFAULT_NORMPROP_CONSTS

    def __post_init__(self):
        check_choice('norm', self.name, NORMS + (NF_NORM,))
        check_choice('normprop_version', self.normprop_version, NORMPROP_VERSIONS)
        if self.weight_init is not None:
            check_choice('weight_init', self.weight_init, WEIGHT_INITS)
        check_choice('normprop_consts', self.normprop_consts, NORMPROP_CONSTS)

    @property
    def init_method(self) -> str:
        """Initialization of the convs and classifier of networks without BatchNorm."""
        return self.weight_init or DEFAULT_WEIGHT_INIT[self.name]

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

    def act(self, act_name: str, inplace: bool = False, after_addition: bool = False) -> nn.Module:
        """An activation with the scheme's correction: gamma (NF, paper form) or NormProp's constants (v1).

        `after_addition` marks the activation of a post-activation block's sum, which follows no NormProp conv.
        """
        if self.name == NF_NORM and not self.gamma_in_conv:
            return create_act(act_name, gain=act_gain(act_name), inplace=inplace)
        if self.name == 'normprop' and not (after_addition and self.normprop_consts == 'conv'):
            return create_act(act_name, inplace=inplace, **normprop_act_kwargs(self.normprop_version))
        return create_act(act_name, inplace=inplace)

    def init_weights(self, module: nn.Module) -> None:
        """Initialize conv/linear/norm weights as the papers say (gains and skip gains are set by their layers)."""
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and self.name in ('none', 'normprop'):
                init_unnormalized_(m, self.init_method)
            elif isinstance(m, nn.Conv2d):
                if self.name == 'batchnorm':
                    nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')  # MSR init, fb.resnet.torch
                else:
                    nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='linear')  # as timm's NormFreeNet
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                if self.name == NF_NORM:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                # batchnorm: Torch7's default weights (PyTorch's are alike), zero bias, as fb.resnet.torch
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

