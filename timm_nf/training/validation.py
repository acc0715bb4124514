"""Validation of one or many models / checkpoints, with results in timm's format plus provenance.

Results carry timm validate.py's fields (`model`, `top1`, `top1_err`, `top5`, `top5_err`, `param_count` in
millions, `img_size`, `crop_pct`, `interpolation`) and, so that a results file can be matched to exactly one
model and one checkpoint, `model_args` (the `timm.create_model` keyword arguments), `checkpoint`,
`checkpoint_sha256`, `dataset` and `split`. `portable_results` makes the two paths a row may name (`checkpoint`,
a `local-dir:` model) relative to the repository, or leaves the checkpoint's out (null) when it lies elsewhere:
`checkpoint_sha256` still identifies it.

When `--checkpoint` is a training checkpoint of `train/train.py`, the values it was trained with (model name,
number of classes, model kwargs, image size, crop, mean/std, interpolation) are used unless given on the
command line, so `validate.py --checkpoint out/last.pth.tar --dataset digits` measures what was trained.
"""
import csv
import fnmatch
import glob
import io
import json
import logging
import os
from collections import OrderedDict
from contextlib import nullcontext
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

import timm
from timm.data import create_loader, resolve_data_config
from timm.utils import natural_key, reparameterize_model

from timm_nf.data import create_dataset, dataset_num_classes

from .checkpoint import (
    atomic_write_text, checkpoint_state_dict, file_sha256, load_checkpoint_file, load_model_state,
)
from .config import portable_model_name, portable_path
from .engine import evaluate
from .errors import RunError
from .trainer import build_model, known_model, resolve_device

__all__ = ['resolve_model_checkpoints', 'validate_one', 'write_results', 'portable_results', 'CHECKPOINT_ARG_KEYS']

_logger = logging.getLogger('validate')

# Values taken from a training checkpoint's `args` when not given on the command line.
CHECKPOINT_ARG_KEYS = ('img_size', 'input_size', 'crop_pct', 'mean', 'std', 'interpolation')


def resolve_model_checkpoints(model: str, checkpoint: str) -> List[Tuple[str, str]]:
    """(model name, checkpoint path) pairs to validate, as timm's validate.py resolves them.

    `model` is a model name, a wildcard over pretrained models (e.g. `nf_regnet*`), or a text file of names
    (one per line; like a wildcard, each is validated with its pretrained weights); `checkpoint` may be a
    directory, meaning every `*.pth.tar` / `*.pth` / `*.safetensors` in it, validated with `model`.
    An empty `model` with a training checkpoint means the architecture recorded in that checkpoint.

    Raises:
        RunError: Nothing matches.
    """
    if checkpoint and os.path.isdir(checkpoint):
        files = []
        for ext in ('*.pth.tar', '*.pth', '*.safetensors'):
            files += glob.glob(os.path.join(checkpoint, ext))
        if not files:
            raise RunError(f'--checkpoint directory {checkpoint!r} holds no *.pth.tar / *.pth / *.safetensors files')
        return [(model, c) for c in sorted(files, key=natural_key)]
    if not model or known_model(model):
        return [(model, checkpoint)]
    if os.path.isfile(model):
        with open(model) as f:
            names = [line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')]
        unknown = [n for n in names if not timm.is_model(n)]
        if unknown:
            raise RunError(f'model list {model!r} names unknown models: {", ".join(unknown[:5])}')
        if not names:
            raise RunError(f'model list {model!r} is empty')
        return [(n, '') for n in names]  # as timm: a list of names means their pretrained weights
    if any(c in model for c in '*?['):
        names = timm.list_models(model, pretrained=True)
        if not names:
            untrained = timm.list_models(model)
            extra = f' ({len(untrained)} match without pretrained weights; give --checkpoint)' if untrained else ''
            raise RunError(f'no pretrained model matches {model!r}{extra}')
        return [(n, '') for n in names]
    close = fnmatch.filter(timm.list_models(), f'*{model[:6]}*')[:5]
    hint = f" (similar: {', '.join(close)})" if close else ''
    raise RunError(f'unknown model {model!r}{hint}; give a model name, a wildcard, or a file of names')


def _checkpoint_defaults(checkpoint: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """(run args, model_args) recorded in a training checkpoint, as plain dicts (empty / None if absent)."""
    run_args = checkpoint.get('args') if isinstance(checkpoint, dict) else None
    if run_args is not None and not isinstance(run_args, dict):
        run_args = vars(run_args)  # argparse.Namespace from timm's own train.py
    model_args = checkpoint.get('model_args') if isinstance(checkpoint, dict) else None
    return dict(run_args or {}), (dict(model_args) if isinstance(model_args, dict) else None)


def validate_one(args, model_name: str, checkpoint_path: str) -> Dict[str, Any]:
    """Validate one model (with an optional checkpoint) on `args.dataset` / `args.split`.

    Args:
        args: Parsed `train/validate.py` arguments (not modified).
        model_name: Model name ('' to take it from the training checkpoint).
        checkpoint_path: Checkpoint file ('' for pretrained / random weights).

    Returns:
        The results row (see module docstring).

    Raises:
        RunError: Bad input (unknown model / dataset, missing data dir, checkpoint unreadable or not fitting).
    """
    device = torch.device(resolve_device(args.device))
    checkpoint = load_checkpoint_file(checkpoint_path) if checkpoint_path else None
    ckpt_args, ckpt_model_args = _checkpoint_defaults(checkpoint) if checkpoint is not None else ({}, None)

    model_name = model_name or ckpt_args.get('model') or (checkpoint or {}).get('arch') or ''
    if not model_name:
        raise RunError('no --model given and the checkpoint does not record one; pass --model NAME')
    # Model arguments: command line first, then what the checkpoint was trained with.
    model_kwargs = dict(args.model_kwargs)
    num_classes = args.num_classes
    if ckpt_model_args is not None and ckpt_args.get('model', model_name) == model_name:
        for key, value in ckpt_model_args.items():
            if key == 'num_classes':
                num_classes = value if num_classes is None else num_classes
            else:
                model_kwargs.setdefault(key, value)
    data_args = dict(vars(args))
    for key in CHECKPOINT_ARG_KEYS:
        if data_args.get(key) in (None, '') and ckpt_args.get(key) not in (None, ''):
            data_args[key] = ckpt_args[key]

    # The dataset is checked before the model is built (cheaper), then the class counts against each other.
    dataset = create_dataset(
        args.dataset, root=args.data_dir, split=args.split, is_training=False, class_map=args.class_map,
        download=args.dataset_download, num_samples=args.num_samples)

    pretrained = args.pretrained or not checkpoint_path
    model = build_model(model_name, pretrained=pretrained, num_classes=num_classes, model_kwargs=model_kwargs)
    if checkpoint is not None:
        state_dict = checkpoint_state_dict(checkpoint, checkpoint_path, use_ema=args.use_ema)
        saved_arch = checkpoint.get('arch') if isinstance(checkpoint.get('arch'), str) else None
        load_model_state(model, state_dict, checkpoint_path, model_name=model_name, saved_arch=saved_arch)
    num_classes = model.num_classes
    n_data = dataset_num_classes(dataset)
    if n_data is not None and n_data > num_classes:
        raise RunError(f'dataset split {args.split!r} has {n_data} classes but model {model_name!r} has '
                       f'{num_classes}; pass --num-classes {n_data} (and a checkpoint trained with them)')
    if args.reparam:
        model = reparameterize_model(model)
    param_count = sum(p.numel() for p in model.parameters())

    data_config = resolve_data_config(data_args, model=model, use_test_size=not args.use_train_size, verbose=True)
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.torchcompile:
        model = torch.compile(model, backend=args.torchcompile, mode=args.torchcompile_mode)
    amp_autocast = nullcontext
    if args.amp:
        amp_dtype = torch.bfloat16 if args.amp_dtype == 'bfloat16' else torch.float16
        amp_autocast = partial(torch.autocast, device_type=device.type, dtype=amp_dtype)

    prefetcher = not args.no_prefetcher
    loader = create_loader(
        dataset, input_size=data_config['input_size'], batch_size=args.batch_size, use_prefetcher=prefetcher,
        interpolation=data_config['interpolation'], mean=data_config['mean'], std=data_config['std'],
        num_workers=args.workers, crop_pct=data_config['crop_pct'], crop_mode=data_config['crop_mode'],
        pin_memory=args.pin_mem, device=device)
    metrics = evaluate(model, loader, device=device, prefetcher=prefetcher, channels_last=args.channels_last,
                       amp_autocast=amp_autocast, log_interval=args.log_freq, log_prefix='Test')

    top1, top5 = metrics['top1'], metrics['top5']
    results = OrderedDict(
        model=model_name,
        top1=round(top1, 4), top1_err=round(100 - top1, 4),
        top5=round(top5, 4), top5_err=round(100 - top5, 4),
        param_count=round(param_count / 1e6, 2),
        img_size=data_config['input_size'][-1],
        crop_pct=data_config['crop_pct'],
        interpolation=data_config['interpolation'],
        model_args=dict(num_classes=num_classes, **model_kwargs),
        checkpoint=checkpoint_path or '',
        checkpoint_sha256=file_sha256(checkpoint_path) if checkpoint_path else '',
        # Which weights were measured: hub/publish.py picks the better of model / EMA weights by this field.
        use_ema=bool(args.use_ema and checkpoint is not None
                     and any(isinstance(checkpoint.get(k), dict) for k in ('state_dict_ema', 'model_ema'))),
        dataset=args.dataset or 'folder',
        split=args.split,
        num_images=len(dataset),
    )
    _logger.info(f' * Acc@1 {top1:.3f} ({100 - top1:.3f}) Acc@5 {top5:.3f} ({100 - top5:.3f})')
    return results


def _csv_value(value: Any) -> Any:
    # model_args is a mapping: JSON keeps it parseable from the CSV cell.
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def portable_results(results: Any, root: str) -> Any:
    """Results row(s) with `checkpoint` and a `local-dir:` `model` named relative to `root` (see `portable_path`)."""
    if isinstance(results, (list, tuple)):
        return [portable_results(r, root) for r in results]
    row = OrderedDict(results)
    if row.get('checkpoint'):
        row['checkpoint'] = portable_path(row['checkpoint'], root)
    row['model'] = portable_model_name(row.get('model'), root)
    return row


def write_results(path: str, results: Any, fmt: str = 'csv') -> None:
    """Write results atomically: JSON (an object for one model, a list for several) or CSV (a row per model)."""
    if fmt == 'json':
        text = json.dumps(results, indent=4) + '\n'
    elif fmt == 'csv':
        rows: Sequence[Dict[str, Any]] = results if isinstance(results, (list, tuple)) else [results]
        buf = io.StringIO()
        if rows:
            fieldnames = list(rows[0].keys())
            for row in rows[1:]:
                fieldnames += [k for k in row if k not in fieldnames]
            writer = csv.DictWriter(buf, fieldnames=fieldnames)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _csv_value(v) for k, v in row.items()})
        text = buf.getvalue()
    else:
        raise RunError(f'unknown --results-format {fmt!r}; use csv or json')
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RunError(f'directory of --results-file {path!r} does not exist')
    atomic_write_text(path, text)
