"""Convs whose weight is a function of raw parameters (scaled WS, NormProp), and the scalars they carry.

`EffectiveWeightConv` applies `effective_weight()` instead of `weight`, recomputed from the parameters on every
forward pass, in training and inference alike: whatever edits the parameters (an optimizer, `load_state_dict`, a
hand-written EMA through `.data`, weight surgery), the next call computes with their current values. Deployment
removes the recomputation with one explicit call: `fuse()` returns a plain `nn.Conv2d` holding the effective
weight, which `timm.utils.reparameterize_model` and `timm_nf.fold_for_inference` use.

Constant scalars around a conv live in its weight instead of costing a pass over the activations:
`input_scale` (e.g. an NF activation gain gamma and beta that multiply the conv's input: ``conv(W, s x) =
conv(s W, x)``, zero padding included) and `output_scale` (e.g. alpha, on weight and bias). They are plain Python
floats fixed at construction, never parameters, so the math is the same in train and eval mode. Subclasses apply
them in the per-filter factor their weight already has (a multiply over `out_channels` values, not the weight).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['EffectiveWeightConv', 'plain_conv_like']


def plain_conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> nn.Conv2d:
    """An `nn.Conv2d` with `conv`'s geometry and the given weight and bias (copied, detached)."""
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, groups=conv.groups, bias=bias is not None, padding_mode=conv.padding_mode,
        device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(weight)
        if bias is not None:
            fused.bias.copy_(bias)
    fused.train(conv.training)
    return fused


class EffectiveWeightConv(nn.Conv2d):
    """Base for convs that apply `effective_weight()` instead of `weight`; subclasses define that function.

    Cooperative with other `nn.Conv2d` subclasses (timm's `ScaledStdConv2d`): constructor arguments pass through.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_scale = 1.0
        self.output_scale = 1.0

    def effective_weight(self, scale: float = 1.0) -> torch.Tensor:
        """The weight the conv applies, times `scale`."""
        raise NotImplementedError

    def scaled_weight_and_bias(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Effective weight and bias with the constant scalars (in the weights, not the activations)."""
        bias = self.bias
        if bias is not None and self.output_scale != 1.0:
            bias = bias * self.output_scale
        return self.effective_weight(self.input_scale * self.output_scale), bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.scaled_weight_and_bias()
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """A plain conv computing the same function (for `timm.utils.reparameterize_model`)."""
        return plain_conv_like(self, *self.scaled_weight_and_bias())
