"""Parameter, MAC and activation counts of registered models, measured on the meta device (no memory, no compute)."""
import functools
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import timm
import torch
import torch.nn as nn

__all__ = ['ModelStats', 'model_stats', 'model_activations']


@dataclass(frozen=True)
class ModelStats:
    name: str
    params: int
    gmacs: float  # multiply-accumulates of one image at `img_size`, in billions
    img_size: int
    out_shape: Tuple[int, ...]
    activations: int = 0  # output elements of every conv and linear layer for one image


def model_stats(name: str, img_size: Optional[int] = None, **kwargs: Any) -> ModelStats:
    """Count parameters, MACs and activations of `timm.create_model(name, **kwargs)` for one image.

    The model is built and run on the meta device, so even ResNet-200 costs a fraction of a second. MACs are read
    off the shapes of every `nn.Conv2d` (subclasses included: weight-standardized and NormProp convs) and
    `nn.Linear` call, which hold every multiply-accumulate of timm-nf's families and of convolutional timm models;
    the totals equal torch's FLOP counter / 2, timm's accounting (resnet50: 4.1; pinned by the tests), at a third
    of its cost. A model that multiplies outside those layers (attention matmuls) is undercounted.
    Results are memoized per (name, size, keyword arguments): card generation asks for the same model repeatedly.

    Args:
        name: Registered model name.
        img_size: Square input size (default: the model's pretrained cfg).
        **kwargs: Keyword arguments of `timm.create_model`.
    """
    return _model_stats(name, img_size, tuple(sorted(kwargs.items())))


@functools.lru_cache(maxsize=None)
def _model_stats(name: str, img_size: Optional[int], kwargs: Tuple[Tuple[str, Any], ...]) -> ModelStats:
    # eval: the counts come from conv / linear output shapes, which the mode does not change, and BatchNorm's
    # batch statistics (train mode) cost about a third of the time on the meta device for nothing.
    model = timm.create_model(name, device='meta', **dict(kwargs)).eval()
    size = img_size or model.pretrained_cfg['input_size'][-1]
    macs, activations = [0], [0]

    def _count(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            per_output = module.in_features
        macs[0] += output.numel() * per_output
        activations[0] += output.numel()

    handles = [m.register_forward_hook(_count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            out = model(torch.empty(1, model.in_chans, size, size, device='meta'))
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in model.parameters())
    return ModelStats(name, params, macs[0] / 1e9, size, tuple(out.shape), activations[0])


def model_activations(name: str, img_size: Optional[int] = None, **kwargs: Any) -> int:
    """Output elements of every convolution and linear layer for one image (fvcore's and timm's cards'
    "activations" count), measured on the meta device."""
    return model_stats(name, img_size, **kwargs).activations
