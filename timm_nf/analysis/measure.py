"""Measurements of signal flow through residual blocks, for any timm model.

* Signal propagation plot (SPP) statistics, Brock, De & Smith, `Characterizing signal propagation to close the
  performance gap in unnormalized ResNets`, ICLR 2021 (Sec. 3, Fig. 1-2; numbers as DeepMind's
  ``nfnets/base.py`` ``signal_metrics``): after the stem and after every residual block, the average over channels
  of the squared channel mean, the average channel variance, and the residual branch's average channel variance
  before the block scales it. Channel moments are over batch and positions.
* Residual difference, Shang, Chiu & Sohn, `Exploring Normalization in Deep Residual Networks with Concatenated
  Rectified Linear Units`, AAAI 2017 (Fig. 2): ``Delta = mean over positions (and samples) of
  ||x_l(:, i, j) - x_{l+1}(:, i, j)||_2``. At a transition block the input and output shapes differ; there ``x_l``
  is replaced by the block's own shortcut of ``x_l`` (its projection, or subsample + zero-pad), i.e. Delta is the
  distance of the output from what the identity path alone would give. Elsewhere the shortcut is ``x_l`` and the
  formula is the paper's.
* Mean activation and non-zero ratio of the features entering the classifier (Shang et al., Table 1): of the
  ``forward_features`` output (after the last activation) and of the pooled pre-logits.
* Filter coherence ``mu = max_{i != j} |W_i . W_j| / (||W_i|| ||W_j||)`` of each conv (Shang et al., Fig. 3).

Normalization mode matters at init: a BatchNorm model in eval mode normalizes with its initial running statistics
(mean 0, var 1), i.e. not at all, and its SPP explodes. By default every measurement therefore runs with the model
in eval mode (no dropout or drop-path) but BatchNorm layers using batch statistics without updating their running
statistics (`analysis_mode`).
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

import torch
import torch.nn as nn

from .adapters import ResidualBlock, effective_conv_weight, find_residual_blocks, nf_expected_variance

__all__ = [
    'analysis_mode', 'ChannelMoments', 'BlockRecord', 'ModelTrace', 'trace_model', 'signal_propagation',
    'residual_differences', 'classifier_activations', 'filter_coherence', 'ForwardError',
]


class ForwardError(RuntimeError):
    """Raised when the model's forward pass rejects the analysis input."""


@contextmanager
def analysis_mode(model: nn.Module, batch_stats: bool = True) -> Iterator[nn.Module]:
    """Put `model` in eval mode, with BatchNorm layers normalizing by batch statistics if `batch_stats`.

    BatchNorm layers are switched to training behaviour with ``track_running_stats = False``, which makes torch (and
    timm's BatchNormAct2d) normalize with the batch's moments and leave running statistics and
    ``num_batches_tracked`` untouched. All modes and flags are restored on exit.
    """
    saved = [(m, m.training, getattr(m, 'track_running_stats', None)) for m in model.modules()]
    try:
        model.eval()
        if batch_stats:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.training = True
                    m.track_running_stats = False
        yield model
    finally:
        for m, training, track in saved:
            m.training = training
            if track is not None:
                m.track_running_stats = track


def _channels_last_2d(x: torch.Tensor) -> torch.Tensor:
    """``(samples * positions, channels)`` view of an NCHW (or NC, or NLC token) tensor, in float64."""
    if x.ndim == 4:
        x = x.permute(0, 2, 3, 1)
    elif x.ndim == 2 or x.ndim == 3:
        pass  # NC, or NLC tokens: channels already last
    else:
        raise ValueError(f'cannot take channel statistics of a {x.ndim}-D tensor')
    return x.reshape(-1, x.shape[-1]).double()


class ChannelMoments:
    """Per-channel mean and variance accumulated over batches (Chan et al.'s pairwise update, float64)."""

    def __init__(self):
        self.n = 0
        self.mean: Optional[torch.Tensor] = None
        self.m2: Optional[torch.Tensor] = None

    def update(self, x: torch.Tensor) -> None:
        x = _channels_last_2d(x)
        n_b = x.shape[0]
        mean_b = x.mean(0)
        m2_b = ((x - mean_b) ** 2).sum(0)
        if self.mean is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (self.n * n_b / n)
        self.n = n

    @property
    def avg_sq_mean(self) -> float:
        """Average over channels of the squared channel mean."""
        return float((self.mean ** 2).mean()) if self.mean is not None else math.nan

    @property
    def avg_var(self) -> float:
        """Average over channels of the (biased) channel variance."""
        return float((self.m2 / self.n).mean()) if self.m2 is not None else math.nan


@dataclass
class BlockRecord:
    """What was measured at one residual block (index 1.. in execution order)."""
    index: int
    name: str
    stage: int
    transition: bool
    expected_var: float
    out: ChannelMoments = field(default_factory=ChannelMoments)
    branch: Optional[ChannelMoments] = None
    delta_sum: float = 0.0
    delta_count: int = 0

    @property
    def delta(self) -> float:
        return self.delta_sum / self.delta_count if self.delta_count else math.nan


@dataclass
class ActivationStats:
    """Mean, std and non-zero ratio of a tensor's entries."""
    mean: float
    std: float
    nzr: float
    numel: int


@dataclass
class ModelTrace:
    """Everything one traced run measured on a model."""
    stem: ChannelMoments
    blocks: List[BlockRecord]
    features: Optional[ActivationStats] = None
    pre_logits: Optional[ActivationStats] = None

    @property
    def stage_ends(self) -> List[int]:
        """Indices of the last block of each stage."""
        blocks = self.blocks
        return [b.index for i, b in enumerate(blocks) if i + 1 == len(blocks) or blocks[i + 1].stage != b.stage]


class _EntryAccumulator:
    def __init__(self):
        self.n = 0
        self.s = 0.0
        self.ss = 0.0
        self.nz = 0

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double()
        self.n += x.numel()
        self.s += float(x.sum())
        self.ss += float((x * x).sum())
        self.nz += int((x != 0).sum())

    def result(self) -> Optional[ActivationStats]:
        if not self.n:
            return None
        mean = self.s / self.n
        return ActivationStats(mean, math.sqrt(max(self.ss / self.n - mean ** 2, 0.0)), self.nz / self.n, self.n)


def _as_batches(inputs: Union[torch.Tensor, Iterable[torch.Tensor]]) -> Iterable[torch.Tensor]:
    return [inputs] if isinstance(inputs, torch.Tensor) else inputs


@torch.no_grad()
def trace_model(
        model: nn.Module,
        inputs: Union[torch.Tensor, Iterable[torch.Tensor]],
        batch_stats: bool = True,
        progress: bool = False,
        num_batches: Optional[int] = None,
        desc: Optional[str] = None,
) -> ModelTrace:
    """Run `model` on `inputs` (a batch or an iterable of batches) and measure every residual block.

    One pass collects the SPP statistics, the residual differences and the classifier-input activations; moments are
    accumulated across batches. Forward hooks on each block capture its input and output, and hooks on the
    sub-modules named by its `BlockAdapter` capture the branch and shortcut (cloned, because timm blocks add in place).

    Args:
        model: Any model with residual blocks `find_residual_blocks` recognises.
        inputs: One NCHW batch or an iterable of them.
        batch_stats: Normalize BatchNorm layers with batch statistics (see `analysis_mode`).
        progress: Show a progress bar (one tick per residual block per batch).
        num_batches: Length of `inputs` when it is an iterable, for the progress bar.
        desc: Label of the progress bar (default: the model's class name).

    Returns:
        The measurements; block indices follow execution order, stages are numbered from 1 by block container.

    Raises:
        NoResidualBlocksError: When the model has no residual blocks.
        ForwardError: When the model's forward rejects an input batch.
    """
    blocks = find_residual_blocks(model)
    stem = ChannelMoments()
    records: Dict[int, BlockRecord] = {}
    stage_ids: Dict[str, int] = {}
    captured: Dict[str, torch.Tensor] = {}
    state = {'first': True}
    handles = []
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
            total = len(blocks) * num_batches if num_batches else None
            bar = tqdm(total=total, desc=desc or type(model).__name__, unit='block', leave=False)
        except ImportError:  # tqdm comes with huggingface_hub; without it run silently
            bar = None

    def _record(block: ResidualBlock) -> BlockRecord:
        rec = records.get(id(block.module))
        if rec is None:
            stage = stage_ids.setdefault(block.stage_name, len(stage_ids) + 1)
            rec = BlockRecord(
                index=len(records) + 1, name=block.name, stage=stage,
                transition=block.adapter.shortcut(block.module) is not None,
                expected_var=nf_expected_variance(block),
                branch=ChannelMoments() if block.adapter.branch(block.module) is not None else None)
            records[id(block.module)] = rec
        return rec

    def make_hooks(block: ResidualBlock):
        key = block.name

        def pre_hook(module, args):
            x = args[0]
            if state['first']:  # input of the first block executed = output of the stem
                stem.update(x)
                state['first'] = False
            captured[key + '/in'] = x.detach().clone()

        def branch_hook(module, args, out):
            captured[key + '/branch'] = out.detach().clone()

        def shortcut_hook(module, args, out):
            captured[key + '/shortcut'] = out.detach().clone()

        def post_hook(module, args, out):
            rec = _record(block)
            x_in = captured.pop(key + '/in')
            branch = captured.pop(key + '/branch', None)
            shortcut = captured.pop(key + '/shortcut', None)
            rec.out.update(out)
            if rec.branch is not None and branch is not None:
                rec.branch.update(branch * block.adapter.branch_scale(module))
            ref = shortcut if shortcut is not None else x_in
            if ref.shape == out.shape:
                diff = out.detach().double() - ref.double()
                norms = diff.norm(dim=1) if diff.ndim == 4 else diff.norm(dim=-1)
                rec.delta_sum += float(norms.sum())
                rec.delta_count += norms.numel()
            if bar is not None:
                bar.update(1)

        return pre_hook, branch_hook, shortcut_hook, post_hook

    for block in blocks:
        pre_hook, branch_hook, shortcut_hook, post_hook = make_hooks(block)
        handles.append(block.module.register_forward_pre_hook(pre_hook))
        handles.append(block.module.register_forward_hook(post_hook))
        branch_mod = block.adapter.branch(block.module)
        if branch_mod is not None:
            handles.append(branch_mod.register_forward_hook(branch_hook))
        shortcut_mod = block.adapter.shortcut(block.module)
        if shortcut_mod is not None:
            handles.append(shortcut_mod.register_forward_hook(shortcut_hook))

    features, pre_logits = _EntryAccumulator(), _EntryAccumulator()
    try:
        with analysis_mode(model, batch_stats=batch_stats):
            for x in _as_batches(inputs):
                state['first'] = True
                try:
                    if hasattr(model, 'forward_features') and hasattr(model, 'forward_head'):
                        feats = model.forward_features(x)
                        features.update(feats)
                        pre_logits.update(model.forward_head(feats, pre_logits=True))
                    else:
                        model(x)
                except Exception as e:  # surface shape/size rejections with the input that caused them
                    raise ForwardError(
                        f'{type(model).__name__} rejected an input of shape {tuple(x.shape)}: '
                        f'{type(e).__name__}: {e} (try another --img-size or --batch-size)') from e
    finally:
        for h in handles:
            h.remove()
        captured.clear()
        if bar is not None:
            bar.close()
    ordered = sorted(records.values(), key=lambda r: r.index)
    return ModelTrace(stem=stem, blocks=ordered, features=features.result(), pre_logits=pre_logits.result())


def signal_propagation(trace: ModelTrace) -> List[Dict[str, Any]]:
    """SPP rows (Brock et al. 2021): index 0 after the stem, then one per residual block.

    Keys: ``index``, ``stage`` (0 for the stem, then 1..), ``block``, ``transition``, ``avg_sq_mean``, ``avg_var``,
    ``res_avg_var`` (NaN for the stem, or when the block class has no branch adapter), ``expected_var`` (the
    variance an NF model tracks, NaN otherwise).
    """
    rows = [dict(index=0, stage=0, block='stem', transition=False, avg_sq_mean=trace.stem.avg_sq_mean,
                 avg_var=trace.stem.avg_var, res_avg_var=math.nan, expected_var=math.nan)]
    for b in trace.blocks:
        rows.append(dict(
            index=b.index, stage=b.stage, block=b.name, transition=b.transition, avg_sq_mean=b.out.avg_sq_mean,
            avg_var=b.out.avg_var, res_avg_var=b.branch.avg_var if b.branch is not None else math.nan,
            expected_var=b.expected_var))
    return rows


def residual_differences(trace: ModelTrace) -> List[Dict[str, Any]]:
    """Residual difference rows (Shang et al. 2017, Fig. 2), one per residual block (index 1..).

    Keys: ``index``, ``stage``, ``block``, ``transition`` (Delta there is taken against the block's shortcut of its
    input, see the module docstring), ``delta``.
    """
    return [dict(index=b.index, stage=b.stage, block=b.name, transition=b.transition, delta=b.delta)
            for b in trace.blocks]


def classifier_activations(trace: ModelTrace) -> List[Dict[str, Any]]:
    """Table 1 rows (Shang et al. 2017): mean, std and non-zero ratio of the entries of the ``forward_features``
    output (``tensor='features'``, after the last activation) and of the pooled ``pre_logits``."""
    rows = []
    for name, s in (('features', trace.features), ('pre_logits', trace.pre_logits)):
        if s is not None:
            rows.append(dict(tensor=name, mean=s.mean, std=s.std, nzr=s.nzr, numel=s.numel))
    return rows


@torch.no_grad()
def filter_coherence(model: nn.Module) -> List[Dict[str, Any]]:
    """Coherence of each conv's filters (Shang et al. 2017, Definition 2 and Fig. 3), in module order.

    ``mu = max_{i != j} |W_i . W_j| / (||W_i|| ||W_j||)`` over the conv's flattened filters, using the filters the
    conv actually applies (`effective_conv_weight`: weight standardization removes each filter's mean). All-zero
    filters (zero-initialized convs) are left out; with fewer than two non-zero filters mu is NaN. Filters of a
    grouped conv are compared across groups too. ``welch_bound = sqrt((n - d) / (d (n - 1)))`` for n filters of
    dimension d is the smallest mu any n vectors in d dimensions can reach (0 when n <= d).

    Keys: ``index`` (1..), ``conv`` (module path), ``out_channels``, ``fan_in``, ``coherence``, ``welch_bound``.
    """
    rows = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.modules.conv._ConvNd):
            continue
        w = effective_conv_weight(m)
        n, d = w.shape
        norms = w.norm(dim=1)
        w = w[norms > 0] / norms[norms > 0, None]
        if w.shape[0] >= 2:
            g = (w @ w.T).abs()
            g.fill_diagonal_(0.0)
            mu = float(g.max())
        else:
            mu = math.nan
        welch = math.sqrt((n - d) / (d * (n - 1))) if n > d and n > 1 else 0.0
        rows.append(dict(index=len(rows) + 1, conv=name, out_channels=n, fan_in=d, coherence=mu, welch_bound=welch))
    if not rows:
        raise ValueError(f'{type(model).__name__} has no convolutions to measure coherence on')
    return rows
