"""Inference / training speed and memory of timm models, alone or side by side.

Library behind `train/benchmark.py`. A model is given as a spec ``NAME[:key=value,...][@variant]``:

* ``NAME`` is any registered timm model, or ``cfg/nf_resnet50`` / ``cfg/nf_resnet50_timm`` / ``cfg/nf_regnet_b1_timm``
  for NF configurations that timm's registry keeps for its own class (ours in the paper's or timm's form);
* ``@fold``: `timm_nf.fold_for_inference` (our convs and timm's `ScaledStdConv2d` folded, BatchNorm folded);
* ``@plain``: the physical limit of the design: the folded network with every remaining scalar op removed
  (beta, alpha, activation gains), i.e. plain convs and activations of identical shape.

Timing runs in one process with the variants interleaved round by round, so that drifting machine load hits all
of them alike; each reported number is the median over rounds. Peak memory is measured in a fresh subprocess per
variant, where no other model is resident: on CUDA the device memory PyTorch allocated (`peak_cuda_mb`,
`torch.cuda.max_memory_allocated`, reset before the model is built), elsewhere the process's peak RSS
(`peak_rss_mb`, a high-water mark that never goes down).
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import timm
import torch
import torch.nn as nn

from timm_nf.analysis.inputs import parse_model_spec
from timm_nf.fold import fold_for_inference
from timm_nf.layers import ScaledAct

__all__ = ['BenchResult', 'build_variant', 'bench_variants', 'measure_peak_memory', 'VARIANTS']

VARIANTS = ('', 'fold', 'plain')


def _cfg_models() -> Dict[str, Callable[[], Any]]:
    from timm_nf.models import nf_regnet_cfg, nf_resnet_cfg
    return {
        'nf_resnet50': lambda: nf_resnet_cfg(50),
        'nf_resnet50_timm': lambda: nf_resnet_cfg(50, timm_form=True),
        'nf_regnet_b1_timm': lambda: nf_regnet_cfg('b1', timm_form=True),
        'nf_regnet_b1_silu': lambda: nf_regnet_cfg('b1'),
    }


@dataclass
class BenchResult:
    model: str
    bench: str  # 'infer' or 'train'
    batch_size: int
    img_size: int
    samples_per_sec: float
    step_ms: float  # median over rounds
    step_ms_all: List[float]
    peak_rss_mb: Optional[float] = None  # CPU: process high-water mark (subprocess per model)
    peak_cuda_mb: Optional[float] = None  # CUDA: max_memory_allocated (subprocess per model)
    param_count_m: float = 0.0
    threads: int = 0


def _remove_scalar_ops(model: nn.Module) -> nn.Module:
    # Folding already moved our NF blocks' beta / alpha into the convs; what remains are scaled activations
    # (the NF head's gamma, NormProp's constants).
    for module in model.modules():
        for name, child in list(module.named_children()):
            if isinstance(child, ScaledAct):
                setattr(module, name, child.act)
    return model


def build_variant(spec: str, num_classes: Optional[int] = None) -> Tuple[nn.Module, int]:
    """Build the model of `spec` (see the module docstring); returns it and its default image size."""
    base, _, variant = spec.partition('@')
    if variant not in VARIANTS:
        choices = ', '.join('@' + v for v in VARIANTS[1:])
        raise ValueError(f'unknown variant @{variant} in {spec!r}; choose one of {choices}')
    parsed = parse_model_spec(base)
    kwargs = dict(parsed.kwargs)
    if num_classes is not None:
        kwargs['num_classes'] = num_classes
    if parsed.name.startswith('cfg/'):
        from timm_nf.models import ResidualNet
        key = parsed.name[4:]
        cfgs = _cfg_models()
        if key not in cfgs:
            raise ValueError(f'unknown config {parsed.name!r}; choose one of {", ".join("cfg/" + k for k in cfgs)}')
        model, img_size = ResidualNet(cfgs[key](), **kwargs), 224
    else:
        model = timm.create_model(parsed.name, **kwargs)
        img_size = model.pretrained_cfg['input_size'][-1]
    if variant in ('fold', 'plain'):
        model = fold_for_inference(model, inplace=True)
    if variant == 'plain':
        model = _remove_scalar_ops(model)
    return model, img_size


def _step_fn(model: nn.Module, bench: str, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    if bench == 'infer':
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                model(x)
        return step
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def bench_variants(
        specs: List[str],
        bench: str = 'infer',
        batch_size: int = 1,
        img_size: Optional[int] = None,
        device: str = 'cpu',
        channels_last: bool = False,
        torchcompile: Optional[str] = None,
        num_warm_iter: int = 3,
        num_bench_iter: int = 10,
        rounds: int = 5,
        progress: Callable[[str], None] = lambda msg: None,
) -> List[BenchResult]:
    """Time `specs` interleaved: every round runs `num_bench_iter` steps of each model in turn.

    The step time of one round is the mean over its iterations; the result is the median over rounds.
    """
    dev = torch.device(device)
    runs = []
    for spec in specs:
        model, default_size = build_variant(spec)
        size = img_size or default_size
        model = model.to(dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        x = torch.randn(batch_size, 3, size, size, device=dev)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, model.num_classes or 1, (batch_size,), device=dev)
        if torchcompile:
            model = torch.compile(model, backend=torchcompile)
        step = _step_fn(model, bench, x, y)
        for _ in range(num_warm_iter):
            step()
        runs.append((spec, size, step, sum(p.numel() for p in model.parameters()) / 1e6))
    times: Dict[str, List[float]] = {spec: [] for spec in specs}
    for r in range(rounds):
        for spec, _, step, _ in runs:
            _sync(dev)
            start = time.perf_counter()
            for _ in range(num_bench_iter):
                step()
            _sync(dev)
            times[spec].append((time.perf_counter() - start) / num_bench_iter * 1e3)
        progress(f'round {r + 1}/{rounds}: ' + ', '.join(f'{s} {times[s][-1]:.1f} ms' for s in specs))
    results = []
    for spec, size, _, params in runs:
        ms = statistics.median(times[spec])
        results.append(BenchResult(
            spec, bench, batch_size, size, batch_size / ms * 1e3, ms, times[spec], param_count_m=params,
            threads=torch.get_num_threads()))
    return results


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Linux's VmHWM belongs to the process's own address space; `ru_maxrss` would not do here, Linux carries it
    across exec from the parent that spawned us, so every child would report at least the parent's peak.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def memory_field(device: str) -> str:
    """The `BenchResult` field `measure_peak_memory` fills on `device`: `peak_cuda_mb` on CUDA, else `peak_rss_mb`."""
    return 'peak_cuda_mb' if torch.device(device).type == 'cuda' else 'peak_rss_mb'


def measure_peak_memory(spec: str, bench: str, batch_size: int, img_size: Optional[int], device: str,
                        num_iter: int = 3, threads: Optional[int] = None) -> float:
    """Peak memory (MB) of a fresh process that builds `spec` and runs `num_iter` steps, the only model in it.

    On CUDA: the device memory PyTorch allocated (`torch.cuda.max_memory_allocated`); elsewhere the process's peak
    RSS (host memory), whose high-water mark never goes down. `memory_field(device)` names which.
    """
    args = [sys.executable, '-m', 'timm_nf.benchmark', spec, bench, str(batch_size), str(img_size or 0), device,
            str(num_iter), str(threads or 0)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])[memory_field(device)])


def _memory_child(argv: List[str]) -> None:
    spec, bench, batch_size, img_size, device, num_iter, threads = argv
    if int(threads):
        torch.set_num_threads(int(threads))
    dev = torch.device(device)
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    res = bench_variants([spec], bench, int(batch_size), int(img_size) or None, device, num_warm_iter=1,
                         num_bench_iter=int(num_iter), rounds=1)[0]
    peaks = {'peak_rss_mb': peak_rss_mb()}
    if dev.type == 'cuda':
        peaks['peak_cuda_mb'] = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    print(json.dumps({**peaks, 'step_ms': res.step_ms}))


def results_to_rows(results: List[BenchResult]) -> List[Dict[str, Any]]:
    rows = []
    for r in results:
        row = asdict(r)
        row['step_ms_all'] = ' '.join(f'{t:.2f}' for t in r.step_ms_all)
        rows.append(row)
    return rows


if __name__ == '__main__':  # memory-measurement child process (see measure_peak_memory)
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    _memory_child(sys.argv[1:])
