"""Folding for inference: exact rewrites of a trained network into fewer, plainer ops.

* A weight-standardized or NormProp conv becomes a plain conv holding its effective weight (`fuse()`).
* BatchNorm after a conv is folded into the conv's weight and bias (eval-mode statistics).
* In NF blocks, the scalars around the branch are folded into conv weights where the rewrite is exact: the
  activation gain gamma and beta before a conv (``conv(W, g * x) = conv(g * W, x)``, zero padding included), and
  ``alpha * skip_gain`` after the last conv. NormProp's shifted activation is left alone: a shift before a
  zero-padded conv is not exactly foldable.
"""
from typing import Optional

import torch
import torch.nn as nn
from timm.layers import ScaledStdConv2d as TimmScaledStdConv2d

from .activations import ScaledAct
from .std_conv import standardized_weight
from .effective_weight import EffectiveWeightConv, plain_conv_like

__all__ = ['FoldableSequential', 'fold_conv_bn', 'to_plain_conv', 'scale_conv_', 'fold_act_gain', 'move_input_scale']


def to_plain_conv(conv: nn.Module) -> nn.Module:
    """A plain `nn.Conv2d` with the effective weight of a WS / NormProp conv (timm's `ScaledStdConv2d` too)."""
    if hasattr(conv, 'fuse'):
        return conv.fuse()
    if isinstance(conv, TimmScaledStdConv2d):
        with torch.no_grad():
            return plain_conv_like(conv, standardized_weight(conv.weight, conv.gain, conv.scale, conv.eps), conv.bias)
    return conv


@torch.no_grad()
def fold_conv_bn(conv: nn.Module, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """`bn(conv(x))` with eval-mode statistics as one conv."""
    conv = to_plain_conv(conv)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return plain_conv_like(conv, conv.weight * scale.view(-1, 1, 1, 1), (bias - bn.running_mean) * scale + bn.bias)


@torch.no_grad()
def scale_conv_(conv: nn.Conv2d, weight_scale: float = 1.0, output_scale: Optional[float] = None) -> None:
    """In place: multiply the weight (input-side scale) or weight and bias (output-side scale) of a plain conv."""
    if weight_scale != 1.0:
        conv.weight.mul_(weight_scale)
    if output_scale is not None and output_scale != 1.0:
        conv.weight.mul_(output_scale)
        if conv.bias is not None:
            conv.bias.mul_(output_scale)


def fold_act_gain(act: nn.Module) -> tuple:
    """Split a gain-only `ScaledAct` into (plain activation, gain); other modules pass with gain 1."""
    if isinstance(act, ScaledAct) and act.shift == 0.0:
        return act.act, act.gain
    return act, 1.0


def move_input_scale(scale: float, *consumers: nn.Module) -> None:
    """Have `consumers` (convs reading the same input) apply `scale` to that input, in their weights."""
    with torch.no_grad():
        for conv in consumers:
            if isinstance(conv, EffectiveWeightConv):
                conv.input_scale *= scale
            else:
                scale_conv_(conv, weight_scale=scale)


class FoldableSequential(nn.Sequential):
    """`nn.Sequential` whose `fuse()` folds each conv -> BatchNorm pair and plain-izes WS / NormProp convs.

    Used for stems and residual branches so that `timm.utils.reparameterize_model` folds them. Call on an
    eval-mode model: BatchNorm is folded with its running statistics.
    """

    @torch.no_grad()
    def fuse(self) -> 'FoldableSequential':
        names = list(self._modules)
        for name in names:
            self._modules[name] = to_plain_conv(self._modules[name])
        for prev, name in zip(names, names[1:]):
            module = self._modules[name]
            if isinstance(module, nn.BatchNorm2d) and isinstance(self._modules[prev], nn.Conv2d):
                self._modules[prev] = fold_conv_bn(self._modules[prev], module)
                self._modules[name] = nn.Identity()
        return self

    def fold_gains_(self) -> None:
        """Move the gain of every gain-only activation into the conv that follows it (exact; the act stays plain)."""
        names = list(self._modules)
        for name, nxt in zip(names, names[1:]):
            act, gain = fold_act_gain(self._modules[name])
            if gain != 1.0 and isinstance(self._modules[nxt], nn.Conv2d):
                self._modules[name] = act
                move_input_scale(gain, self._modules[nxt])
