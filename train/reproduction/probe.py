"""Short training probes: does a model variant start to learn, and how large is its output at init?

The evidence behind the design choices Shang, Chiu & Sohn (AAAI 2017) leave open (docs/REPRODUCTION.md, "Design
choices the paper leaves open") comes from these probes, all behind `train/probe.py`:

* `probe_run`: a plain training loop on the study's data (the embedded digits at 16 px, normalized with the CIFAR
  statistics, no augmentation), batch 32, Nesterov SGD with momentum 0.9 and weight decay 1e-4 on every parameter,
  a constant lr, a few epochs. It records the standard deviation of the logits at init, the first update whose loss
  is not finite, the training loss per epoch and the final validation top-1. Four epochs do not judge a model (the
  study's 30 epochs and lr rule do); they tell whether it starts to learn at all.
* `warmup_command`: a short run of timm's own `train.py` (or ours, same flags) with a per-epoch warmup, the setting
  in which the BatchNorm CIFAR networks can blow up; `warm_buffer_updates` measures why (the momentum buffer an
  epoch at a tiny lr leaves behind).

Variants are model specs of `timm_nf.analysis` (``NAME[:key=value,...]``), so any keyword of the families works.
"""
import csv
import math
import os
import sys
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    'PROBE_FIELDS', 'WARMUP_FIELDS', 'WARMUP_FLAGS', 'append_probe_row', 'probe_run', 'probe_summary', 'read_probe_csv',
    'warm_buffer_updates', 'warmup_command', 'warmup_row', 'warmup_summary', 'warmup_variant',
]

# Columns of a probe CSV, one row per (variant, seed, lr).
PROBE_FIELDS = ('variant', 'seed', 'lr', 'epochs', 'logit_std_init', 'nan_step', 'train_loss', 'val_top1')
# The probe's training setting: the study's (train/recipes/study_digits.yaml) without augmentation or lr steps.
PROBE_IMG_SIZE = 16
PROBE_BATCH_SIZE = 32
_data_cache: Dict[int, Tuple[torch.Tensor, ...]] = {}


def _digits_tensors(img_size: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and validation images (normalized, `img_size` px) and targets of the embedded digits."""
    if img_size not in _data_cache:
        from timm.data import create_transform
        from timm_nf.data import DigitsDataset
        from timm_nf.constants import CIFAR10_MEAN, CIFAR10_STD
        tf = create_transform(img_size, is_training=False, crop_pct=1.0, interpolation='bilinear',
                              mean=CIFAR10_MEAN, std=CIFAR10_STD)
        out = []
        for split in ('train', 'validation'):
            ds = DigitsDataset(split, transform=tf)
            out += [torch.stack([ds[i][0] for i in range(len(ds))]), torch.as_tensor(ds.targets)]
        _data_cache[img_size] = tuple(out)
    return _data_cache[img_size]


@torch.no_grad()
def logit_std_at_init(model: nn.Module, images: torch.Tensor) -> float:
    """Standard deviation of the logits of `images` in train mode (BatchNorm on batch statistics), leaving the
    model's buffers as they were."""
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    model.train()
    std = float(model(images).float().std())
    model.load_state_dict(buffers, strict=False)
    return std


def probe_run(
        spec: str,
        seed: int,
        lr: float,
        epochs: int = 4,
        batch_size: int = PROBE_BATCH_SIZE,
        img_size: int = PROBE_IMG_SIZE,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
) -> Dict[str, Any]:
    """Train model spec `spec` from init (seed `seed`) at a constant `lr` for `epochs` epochs; one `PROBE_FIELDS` row.

    The run stops at the first non-finite loss (`nan_step`, 1-based update; the reported top-1 is then that of the
    weights before the bad update).
    """
    import timm
    from timm.optim import create_optimizer_v2
    from timm_nf.analysis.inputs import parse_model_spec
    x_train, y_train, x_val, y_val = _digits_tensors(img_size)
    ms = parse_model_spec(spec)
    torch.manual_seed(seed)
    model = timm.create_model(ms.name, **{'num_classes': 10, **ms.kwargs})
    g = torch.Generator().manual_seed(seed)
    std0 = logit_std_at_init(model, x_train[torch.randperm(len(x_train), generator=g)[:batch_size]])
    opt = create_optimizer_v2(model, 'sgd', lr=lr, momentum=momentum, weight_decay=weight_decay,
                              filter_bias_and_bn=False)  # as fb.resnet.torch and the study: decay everything
    nan_step, step, losses = None, 0, []
    for _ in range(epochs):
        model.train()
        total, n = 0.0, 0
        for idx in torch.randperm(len(x_train), generator=g).split(batch_size):
            step += 1
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            if not math.isfinite(loss.item()):
                nan_step = step
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        if nan_step is not None:
            break
        losses.append(total / n)
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xb).argmax(1) for xb in x_val.split(256)])
    top1 = 100.0 * float((pred == y_val).float().mean())
    return dict(variant=spec, seed=seed, lr=lr, epochs=epochs, logit_std_init=round(std0, 4),
                nan_step=nan_step if nan_step is not None else '',
                train_loss=' '.join(f'{x:.4f}' for x in losses), val_top1=round(top1, 2))


def read_probe_csv(path: str) -> List[Dict[str, Any]]:
    """Rows of a probe CSV (empty when the file does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def append_probe_row(path: str, row: Dict[str, Any], fields: Sequence[str] = PROBE_FIELDS) -> None:
    """Append one row (with the header if the file is new), flushed to disk: a killed grid keeps its finished runs."""
    new = not os.path.exists(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'a', newline='') as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def probe_summary(rows: Iterable[Dict[str, Any]], trained_top1: float = 80.0) -> List[str]:
    """Markdown table: per variant and lr, the logit std at init, each seed's outcome and how many trained."""
    groups: Dict[Tuple[str, float], List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r['variant'], float(r['lr'])), []).append(r)
    lines = [f'| variant | lr | logit std at init | per seed: final val top-1 % (NaN at update k) | '
             f'seeds >= {trained_top1:g}% |', '|---|---:|---:|---|---:|']
    for (variant, lr), rs in groups.items():
        rs = sorted(rs, key=lambda r: int(r['seed']))
        cells = []
        for r in rs:
            cell = f"s{r['seed']}: {float(r['val_top1']):.1f}"
            if str(r['nan_step']):
                cell += f" (NaN at {r['nan_step']})"
            cells.append(cell)
        stds = sorted(float(r['logit_std_init']) for r in rs)
        std = f'{stds[len(stds) // 2]:.3g}' + (f' ({stds[0]:.3g}-{stds[-1]:.3g})' if len(stds) > 1 else '')
        ok = sum(float(r['val_top1']) >= trained_top1 for r in rs)
        lines.append(f'| `{variant}` | {lr:g} | {std} | {", ".join(cells)} | {ok}/{len(rs)} |')
    return lines


def warm_buffer_updates(
        spec: str = 'crelu_resnet20', seed: int = 1, warmup_lr: float = 1e-5, lr: float = 0.0427,
        batch_size: int = 64, img_size: int = 32, after: int = 5,
) -> Dict[str, Any]:
    """What an epoch at a tiny lr leaves in SGD's momentum buffer: the classifier's updates after the jump to `lr`.

    One epoch of the digits (unaugmented, in order) at `warmup_lr`, then `after` updates at `lr`, run twice from
    the same init: with the buffer as the warmup left it, and with it cleared at the jump. timm's optimizer
    (`create_optimizer_v2('sgd')`: Nesterov, momentum 0.9, weight decay 1e-4 off for biases and norms).

    Returns:
        For 'warm' and 'fresh': `update` (the classifier's first full-lr update over its weights' norm) and
        `losses` (the training loss of each full-lr update).
    """
    import timm
    from timm.optim import create_optimizer_v2
    from timm_nf.analysis.inputs import parse_model_spec
    x, y = _digits_tensors(img_size)[:2]
    ms = parse_model_spec(spec)
    n_warm = len(x) // batch_size
    out = {}
    for name, clear in (('warm', False), ('fresh', True)):
        torch.manual_seed(seed)
        model = timm.create_model(ms.name, **{'num_classes': 10, **ms.kwargs}).train()
        opt = create_optimizer_v2(model, 'sgd', lr=warmup_lr, weight_decay=1e-4, momentum=0.9)
        fc = model.get_classifier().weight
        losses, update = [], None
        for step in range(n_warm + after):
            if step == n_warm:  # the warmup epoch is over
                for group in opt.param_groups:
                    group['lr'] = lr
                if clear:
                    for state in opt.state.values():
                        state['momentum_buffer'] = None
            idx = slice((step % n_warm) * batch_size, (step % n_warm + 1) * batch_size)
            before = fc.detach().clone()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step >= n_warm:
                losses.append(round(loss.item(), 4))
                if update is None:
                    update = (fc.detach() - before).norm().item() / before.norm().item()
        out[name] = dict(update=round(update, 4), losses=losses)
    return out


# timm's train.py flags of the warmup setting (issue #12, point 4): a per-epoch warmup from 1e-5, then cosine.
WARMUP_FLAGS = ('-b', '64', '--opt', 'sgd', '--lr', '0.05', '--weight-decay', '1e-4', '--sched', 'cosine',
                '--epochs', '4', '--warmup-epochs', '1', '--hflip', '0', '--scale', '0.7', '1.0',
                '--ratio', '0.9', '1.1')


WARMUP_FIELDS = ('variant', 'seed', 'epoch1_train_loss', 'epoch1_eval_loss', 'val_top1')


def warmup_variant(model: str, model_kwargs: Sequence[str] = (), reset_momentum: bool = False,
                   extra: Sequence[str] = ()) -> str:
    """Label of a warmup run: the model spec, plus '+momentum reset' for the diagnostic and any extra train.py flags
    (runs with other flags are other variants)."""
    label = model + (':' + ','.join(model_kwargs) if model_kwargs else '')
    return label + (' +momentum reset' if reset_momentum else '') + ''.join(f' {x}' for x in extra)


def warmup_row(variant: str, seed: int, summary_csv: str) -> Dict[str, Any]:
    """One `WARMUP_FIELDS` row from a run's summary.csv (epoch 1 is the first at the full lr)."""
    with open(summary_csv, newline='') as f:
        epochs = list(csv.DictReader(f))
    return dict(variant=variant, seed=seed, epoch1_train_loss=round(float(epochs[1]['train_loss']), 4),
                epoch1_eval_loss=round(float(epochs[1]['eval_loss']), 4),
                val_top1=round(float(epochs[-1]['eval_top1']), 2))


def warmup_summary(rows: Iterable[Dict[str, Any]], trained_top1: float = 80.0) -> List[str]:
    """Markdown table: per variant, each seed's final top-1 and how many seeds trained."""
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r['variant'], []).append(r)
    lines = [f'| variant | seeds | final val top-1 % per seed | epoch-1 train loss (median) | max epoch-1 eval loss | '
             f'seeds >= {trained_top1:g}% |', '|---|---:|---|---:|---:|---:|']
    for variant, rs in groups.items():
        rs = sorted(rs, key=lambda r: int(r['seed']))
        top1 = [float(r['val_top1']) for r in rs]
        loss = sorted(float(r['epoch1_train_loss']) for r in rs)
        lines.append(f"| `{variant}` | {', '.join(str(r['seed']) for r in rs)} | "
                     f"{', '.join(f'{t:.1f}' for t in top1)} | {loss[len(loss) // 2]:.2f} | "
                     f"{max(float(r['epoch1_eval_loss']) for r in rs):.3g} | "
                     f'{sum(t >= trained_top1 for t in top1)}/{len(rs)} |')
    return lines


def warmup_command(
        train_script: str, data_dir: str, model: str, seed: int, output: str,
        model_kwargs: Sequence[str] = (), extra: Sequence[str] = (), reset_momentum: bool = False,
) -> List[str]:
    """Command line of one warmup run: timm's own train.py (with `--device-modules timm_nf`) or ours.

    Args:
        train_script: Path of timm's `train.py` from a timm checkout, or of this project's `train/train.py`.
        data_dir: Image folder with `train/` and `validation/` (`timm_nf.data.export_image_folder`).
        model: Model name.
        seed: Seed.
        output: Output root; the run goes to `<output>/seed<seed>`.
        model_kwargs: `key=value` strings for `--model-kwargs`.
        extra: More flags.
        reset_momentum: Import `train.reproduction.momentum_reset` (timm's train.py only; the repository root must be
            on PYTHONPATH): clear the momentum buffers
            when the warmup hands over to the full lr.
    """
    ours = os.path.abspath(train_script).endswith(os.path.join('train', 'train.py')) and \
        os.path.exists(os.path.join(os.path.dirname(os.path.abspath(train_script)), 'recipes'))
    cmd = [sys.executable, train_script, '--data-dir', data_dir, '--train-split', 'train', '--val-split', 'validation',
           '--model', model, *WARMUP_FLAGS, '--seed', str(seed), '--device', 'cpu', '--output', output,
           '--experiment', f'seed{seed}']
    if not ours:
        cmd += ['--device-modules', 'timm_nf'] + (['train.reproduction.momentum_reset'] if reset_momentum else [])
    elif reset_momentum:
        raise ValueError('reset_momentum needs timm\'s train.py (it imports --device-modules)')
    if model_kwargs:
        cmd += ['--model-kwargs', *model_kwargs]
    return cmd + list(extra)
