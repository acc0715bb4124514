"""Parameter and MAC counts of registered models, measured on the meta device (no memory, no compute)."""
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ['ModelStats', 'model_stats', 'model_activations']


@dataclass(frozen=True)
class ModelStats:
    name: str
    params: int
    gmacs: float  # multiply-accumulates of one image at `img_size`, in billions (torch's FLOP counter / 2)
    img_size: int
    out_shape: Tuple[int, ...]


def model_stats(name: str, img_size: Optional[int] = None, **kwargs: Any) -> ModelStats:
    """Count parameters and MACs of `timm.create_model(name, **kwargs)` for one image at its default size.

    The model is built on the meta device, so even ResNet-200 costs milliseconds; torch's FLOP counter sees the
    real operator calls (convs, matmuls), the same accounting as timm's published GMACs (resnet50: 4.1).
    """
    model = timm.create_model(name, device='meta', **kwargs)
    size = img_size or model.pretrained_cfg['input_size'][-1]
    x = torch.empty(1, model.in_chans, size, size, device='meta')
    with FlopCounterMode(display=False) as counter:
        out = model(x)
    params = sum(p.numel() for p in model.parameters())
    return ModelStats(name, params, counter.get_total_flops() / 2e9, size, tuple(out.shape))


def model_activations(name: str, img_size: Optional[int] = None, **kwargs: Any) -> int:
    """Output elements of every convolution and linear layer for one image (fvcore's and timm's cards'
    "activations" count), measured on the meta device."""
    model = timm.create_model(name, device='meta', **kwargs)
    size = img_size or model.pretrained_cfg['input_size'][-1]
    counts = []

    def _hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        counts.append(output.numel())

    handles = [m.register_forward_hook(_hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d,
                                                                                         torch.nn.Linear))]
    try:
        model(torch.empty(1, model.in_chans, size, size, device='meta'))
    finally:
        for handle in handles:
            handle.remove()
    return sum(counts)
