"""Activations of the normalization study: CReLU, gain-scaled activations and the gain table.

CReLU from `Exploring Normalization in Deep Residual Networks with Concatenated Rectified Linear Units`
(Shang, Chiu & Sohn, AAAI 2017). Activation gains from `Characterizing signal propagation to close the
performance gap in unnormalized ResNets` (Brock, De & Smith, ICLR 2021), values of the official code
(google-deepmind/deepmind-research, nfnets/base.py).
"""
import math
from typing import Callable, Dict, Iterable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import get_act_layer

__all__ = [
    'ACT_GAINS', 'CReLU', 'ScaledAct', 'NORMPROP_C0', 'NORMPROP_C1', 'act_gain', 'create_act', 'check_choice',
]

# gamma such that act(x) * gamma has unit variance for x ~ N(0, 1) (DeepMind nfnets/base.py). CReLU's output
# channels are ReLU(x) and ReLU(-x), each distributed as ReLU of N(0, 1), so CReLU takes the ReLU gain.
ACT_GAINS: Dict[str, float] = {
    'identity': 1.0,
    'relu': 1.7139588594436646,
    'crelu': 1.7139588594436646,
    'silu': 1.7881293296813965,
    'gelu': 1.7015043497085571,
    'tanh': 1.5939117670059204,
    'elu': 1.2716004848480225,
}

# NormProp (Arpit et al. 2016) re-centres and re-scales ReLU(N(0, 1)) to zero mean, unit variance:
# E[relu(x)] = 1/sqrt(2 pi) and var[relu(x)] = 1/2 - 1/(2 pi).
NORMPROP_C0: float = 1.0 / math.sqrt(2.0 * math.pi)
NORMPROP_C1: float = 1.0 / math.sqrt(0.5 - 0.5 / math.pi)


def check_choice(name: str, value, choices: Iterable) -> None:
    """Raise a ValueError naming the valid choices when `value` is not one of them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f'{name}={value!r} is not supported; choose one of {", ".join(map(repr, choices))}.')


class CReLU(nn.Module):
    """Concatenated ReLU: ``cat(relu(x), relu(-x))`` on the channel axis, doubling the channels.

    `channel_mult` tells the layer that follows how many input channels to expect.
    """
    channel_mult: int = 2

    def __init__(self, inplace: bool = False):
        super().__init__()
        # One concat then one ReLU: no in-place op on `x`, which the identity path may still need.
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.cat((x, -x), dim=1))


class ScaledAct(nn.Module):
    """``gain * (act(x) - shift)``: the gamma-scaled activation of NF-ResNets (shift 0) and NormProp's
    re-normalized ReLU (gain c1, shift c0), one module for both affine corrections.

    Args:
        act_layer: Activation module class (e.g. nn.ReLU, CReLU).
        gain: Multiplier applied after the activation.
        shift: Subtracted from the activation before the gain.
        inplace: Passed to the activation when it supports it.
    """

    def __init__(
            self,
            act_layer: Callable[..., nn.Module],
            gain: float = 1.0,
            shift: float = 0.0,
            inplace: bool = False,
    ):
        super().__init__()
        self.act = _make(act_layer, inplace)
        self.channel_mult = getattr(self.act, 'channel_mult', 1)
        self.owns_output = not isinstance(self.act, nn.Identity)
        self.gain = float(gain)
        self.shift = float(shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        if self.shift != 0.0:
            x = x - self.shift
        if self.owns_output and not torch.is_grad_enabled():
            # Inference: the activation's output is a fresh tensor only this module holds, so scale it in place
            # and save an allocation and a pass over memory (with autograd on, the activation may need it).
            return x.mul_(self.gain)
        return x * self.gain

    def extra_repr(self) -> str:
        return f'gain={self.gain}, shift={self.shift}'


def _make(act_layer: Callable[..., nn.Module], inplace: bool) -> nn.Module:
    try:
        return act_layer(inplace=inplace)
    except TypeError:  # e.g. nn.GELU has no inplace argument
        return act_layer()


def act_gain(name: str) -> float:
    """The NF activation gain gamma of activation `name` (ValueError with the known names otherwise)."""
    check_choice('act_layer', name, ACT_GAINS)
    return ACT_GAINS[name]


def _act_class(name: str) -> Callable[..., nn.Module]:
    return CReLU if name == 'crelu' else get_act_layer(name)


def create_act(name: str, gain: float = 1.0, shift: float = 0.0, inplace: bool = False) -> nn.Module:
    """Create activation `name` ('relu', 'crelu', or any timm activation), scaled when gain/shift say so.

    A plain activation module is returned when no scaling is needed, so unscaled networks carry no extra op.
    """
    act_cls = _act_class(name)
    if gain == 1.0 and shift == 0.0:
        return _make(act_cls, inplace)
    return ScaledAct(act_cls, gain=gain, shift=shift, inplace=inplace)


def channel_mult(act: Optional[nn.Module]) -> int:
    """How many channels an activation module emits per input channel (2 for CReLU, else 1)."""
    return getattr(act, 'channel_mult', 1) if act is not None else 1
