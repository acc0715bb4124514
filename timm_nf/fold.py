"""`fold_for_inference`: every foldable layer of a model folded, for ours and for timm's NF models."""
import copy

import torch
import torch.nn as nn
from timm.utils import reparameterize_model

from timm_nf.layers.fold import to_plain_conv

__all__ = ['fold_for_inference']


@torch.no_grad()
def fold_for_inference(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return `model` in eval mode with its weight-standardized / NormProp convs replaced by plain convs, BatchNorm
    folded into the preceding convs and NF scalar gains folded into conv weights. Outputs are unchanged up to
    floating-point rounding.

    Works through timm's `reparameterize_model` (our layers and blocks implement `fuse()`), then also replaces
    timm's own `ScaledStdConv2d`, which has no `fuse()`, so timm's `nf_*` / `nfnet_*` models fold too.

    Args:
        model: Any timm model.
        inplace: Modify `model` itself instead of a deep copy.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    model = reparameterize_model(model, inplace=True)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            plain = to_plain_conv(child)
            if plain is not child:
                setattr(parent, name, plain)
    return model
