"""Scaled Weight Standardization conv that carries constant scalars in its weight and fuses into a plain conv.

`Characterizing signal propagation to close the performance gap in unnormalized ResNets` (Brock, De & Smith,
ICLR 2021). A subclass of timm's `ScaledStdConv2d` (same parameters, same math, so timm's weights and code that
checks for timm's class keep working). Like timm's layer it re-standardizes the weight on every forward pass;
unlike it, it folds into a plain conv for inference (`fuse()`) and applies the NF scalars around it in its weight.
"""
import torch
import torch.nn.functional as F
from timm.layers import ScaledStdConv2d as TimmScaledStdConv2d

from .effective_weight import EffectiveWeightConv

__all__ = ['ScaledStdConv2d', 'standardized_weight']


def standardized_weight(weight: torch.Tensor, gain: torch.Tensor, scale: float, eps: float) -> torch.Tensor:
    """``gain * scale * (W - mean) / std`` per filter (scale = gamma / sqrt(fan_in)), computed exactly as timm's
    layer does (biased variance plus eps, through `F.batch_norm` on the reshaped weight): bit-identical results."""
    out_channels = weight.shape[0]
    return F.batch_norm(
        weight.reshape(1, out_channels, -1), None, None, weight=(gain * scale).view(-1), training=True, momentum=0.,
        eps=eps,
    ).reshape_as(weight)


class ScaledStdConv2d(EffectiveWeightConv, TimmScaledStdConv2d):
    """timm's `ScaledStdConv2d` plus `input_scale` / `output_scale` and `fuse()` (see `EffectiveWeightConv`)."""

    def effective_weight(self, scale: float = 1.0) -> torch.Tensor:
        """The standardized weight times `scale`, applied to the per-filter gains rather than the weight."""
        return standardized_weight(self.weight, self.gain, self.scale * scale, self.eps)
