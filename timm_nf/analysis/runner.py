"""One call from model specs to the rows of an analysis, shared by the CLI and notebooks."""
import os

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from .adapters import set_unit_gains
from .inputs import create_analysis_model, dataset_batches, model_input_size, noise_batches
from .measure import classifier_activations, filter_coherence, residual_differences, signal_propagation, trace_model
from .report import plot_activations, plot_coherence, plot_delta, plot_spp, write_csv

__all__ = ['ANALYSES', 'Analysis', 'run_analysis', 'save_analysis']


@dataclass(frozen=True)
class Analysis:
    """One kind of analysis: its CSV columns (in order), its plot, and whether it runs the model on inputs."""
    columns: Sequence[str]
    plot: Callable[[List[Dict[str, Any]], str], None]
    needs_input: bool = True


ANALYSES: Dict[str, Analysis] = {
    'spp': Analysis(
        ('model', 'index', 'stage', 'avg_sq_mean', 'avg_var', 'res_avg_var', 'input', 'unit_gains',
         'block', 'transition', 'expected_var'), plot_spp),
    'delta': Analysis(
        ('model', 'index', 'stage', 'block', 'transition', 'delta', 'input', 'unit_gains'), plot_delta),
    'activations': Analysis(
        ('model', 'tensor', 'mean', 'std', 'nzr', 'numel', 'input', 'unit_gains'), plot_activations),
    'coherence': Analysis(
        ('model', 'index', 'conv', 'out_channels', 'fan_in', 'coherence', 'welch_bound', 'unit_gains'),
        plot_coherence, needs_input=False),
}


def run_analysis(
        kind: str,
        specs: Sequence[str],
        checkpoint: Optional[str] = None,
        pretrained: bool = False,
        img_size: Optional[int] = None,
        batch_size: int = 8,
        num_batches: int = 1,
        unit_gains: bool = False,
        dataset: Optional[str] = None,
        data_dir: Optional[str] = None,
        split: str = 'validation',
        batch_stats: bool = True,
        seed: int = 0,
        progress: bool = True,
        log: Optional[Callable[[str], None]] = None,
) -> List[Dict[str, Any]]:
    """Run analysis `kind` ('spp', 'delta', 'activations', 'coherence') on each model spec; rows of all models.

    Args:
        kind: Which analysis.
        specs: Model specs (`timm_nf.analysis.inputs`); the first is the main model.
        checkpoint: Checkpoint loaded into the first model only.
        pretrained: Load timm's pretrained weights into every model.
        img_size: Square input size (default: each model's pretrained cfg).
        batch_size: Images per batch.
        num_batches: Batches accumulated.
        unit_gains: Reset zero-initialized residual gains to 1 (`set_unit_gains`).
        dataset: Real images from this dataset instead of N(0, 1) noise.
        data_dir: Dataset root.
        split: Dataset split.
        batch_stats: Normalize BatchNorm layers with batch statistics (see `measure.analysis_mode`).
        seed: Seed of model init and inputs, so every model sees the same noise.
        progress: Show progress bars.
        log: Called with one summary line per model.
    """
    analysis = ANALYSES[kind]
    rows: List[Dict[str, Any]] = []
    input_name = dataset if dataset else 'noise'
    for i, spec in enumerate(specs):
        model = create_analysis_model(spec, pretrained=pretrained, checkpoint=checkpoint if i == 0 else None, seed=seed)
        reset = set_unit_gains(model) if unit_gains else []
        common = dict(model=spec, unit_gains=unit_gains)
        if not analysis.needs_input:
            new = [dict(common, **r) for r in filter_coherence(model)]
            if log:
                log(f'{spec}: {len(new)} convs')
        else:
            input_size = model_input_size(model, img_size)
            if dataset:
                batches = dataset_batches(model, dataset, data_dir, split, input_size, batch_size, num_batches, seed)
            else:
                batches = noise_batches(input_size, batch_size, num_batches, seed)
            trace = trace_model(model, batches, batch_stats=batch_stats, progress=progress, num_batches=num_batches,
                                desc=spec)
            if kind == 'spp':
                new = signal_propagation(trace)
            elif kind == 'delta':
                new = residual_differences(trace)
            else:
                new = classifier_activations(trace)
            new = [dict(common, input=input_name, **r) for r in new]
            if log:
                log(f'{spec}: {len(trace.blocks)} residual blocks, {input_name} input {num_batches}x'
                    f'{(batch_size, *input_size)}, {len(reset)} zero-init gains reset')
        rows += new
    return rows


def save_analysis(kind: str, rows: List[Dict[str, Any]], out_dir: str, title: Optional[str] = None) -> List[str]:
    """Write ``<kind>.csv`` and ``<kind>.png`` into `out_dir`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    analysis = ANALYSES[kind]
    csv_path, png_path = os.path.join(out_dir, f'{kind}.csv'), os.path.join(out_dir, f'{kind}.png')
    write_csv(rows, csv_path, analysis.columns)
    if title is None:
        analysis.plot(rows, png_path)
    else:
        analysis.plot(rows, png_path, title=title)
    return [csv_path, png_path]


