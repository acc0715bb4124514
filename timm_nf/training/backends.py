"""Device settings of a run: cuDNN autotuning, determinism, and a check of float16's headroom before AMP.

* cuDNN autotuning (`torch.backends.cudnn.benchmark`) is on by default on CUDA, as in timm's train.py: for a fixed
  input size it picks the fastest convolution algorithms once, at the cost of run-to-run bit differences.
* `--deterministic` asks for reruns that agree: cuDNN's deterministic algorithms, no autotuning, and
  `torch.use_deterministic_algorithms(True, warn_only=True)`, so an op without a deterministic implementation
  warns (once) instead of stopping the run.
* float16's largest value is 65504. A network whose activations at init are already within a small factor of it
  (NormProp v1 at depth 110 reaches about 1e4 on the digits at 32 px; every other family stays below 100) can
  overflow to inf under float16 autocast; bfloat16 has float32's range.
"""
import os
import random
from contextlib import contextmanager
from typing import Iterable, Iterator, List, Optional

import numpy as np
import torch
import torch.nn as nn

__all__ = ['configure_backends', 'peak_activation', 'float16_overflow_warning', 'FLOAT16_MAX', 'FLOAT16_MARGIN']

FLOAT16_MAX = float(torch.finfo(torch.float16).max)
# Activations grow during training (NormProp v1 diverged in the study's runs), so the check warns well before the
# maximum: at init, within this factor of it.
FLOAT16_MARGIN = 32.0


def configure_backends(device: torch.device, deterministic: bool = False, cudnn_benchmark: bool = True) -> str:
    """Set cuDNN autotuning and determinism for a run (process-wide); returns a description for the log.

    Args:
        device: The run's device; autotuning applies to CUDA only.
        deterministic: Deterministic algorithms (cuDNN and PyTorch's own, where an op has one), no autotuning.
        cudnn_benchmark: cuDNN autotuning on CUDA (ignored with `deterministic`).
    """
    if deterministic:
        # cuBLAS reads this when its first handle is created, which has not happened yet in a fresh run.
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        return 'deterministic algorithms (cuDNN deterministic, no autotuning; ops without one warn)'
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = cudnn_benchmark
        return f'cuDNN autotuning {"on" if cudnn_benchmark else "off"}; reruns may differ in the last bits'
    return 'default algorithms'


@contextmanager
def _state_kept(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Restore the model's buffers (BatchNorm statistics), its train/eval mode and every RNG on exit."""
    buffers = [b.detach().clone() for b in model.buffers()]
    was_training = model.training
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == 'cuda' else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            yield
    finally:
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)
        model.train(was_training)
        random.setstate(py_state)
        np.random.set_state(np_state)


def peak_activation(model: nn.Module, loader: Iterable, device: torch.device, max_images: int = 16) -> float:
    """Largest |value| of any module output in one float32 training-mode forward pass of the loader's first batch.

    The model's state (BatchNorm statistics, mode) and all random number generators are left as they were, so the
    run that follows is the one it would have been.

    Args:
        model: The model, on `device` (not DDP-wrapped).
        loader: A loader yielding `(input, target)`; inputs on `device` (timm's prefetcher) or on the CPU.
        device: Device.
        max_images: Images of the first batch to use.
    """
    peaks: List[torch.Tensor] = []

    def record(module: nn.Module, args, output) -> None:
        if isinstance(output, torch.Tensor) and output.is_floating_point() and output.numel():
            peaks.append(output.detach().abs().amax().float())

    with _state_kept(model, device):
        input, _ = next(iter(loader))
        input = input[:max_images].to(device)
        handles = [m.register_forward_hook(record) for m in model.modules()]
        try:
            model.train()
            with torch.no_grad():
                model(input)
        finally:
            for h in handles:
                h.remove()
    return torch.stack(peaks).max().item() if peaks else 0.0


def float16_overflow_warning(model_name: str, peak: float) -> Optional[str]:
    """A one-line warning when activations of `peak` leave float16 too little headroom, else None."""
    if peak * FLOAT16_MARGIN <= FLOAT16_MAX:
        return None
    return (f'--amp with float16: activations of {model_name} reach {peak:.3g} at init on this data, within '
            f'{FLOAT16_MAX / peak:.0f}x of float16\'s maximum {FLOAT16_MAX:.0f}, and can overflow to inf in '
            f'training; use --amp-dtype bfloat16')
