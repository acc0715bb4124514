"""What the analysis runs on: models built from specs, and N(0, 1) or real-image input batches.

A model spec is ``NAME[:key=value,...][+transform...]``:

* ``NAME``: any model in timm's registry (``import timm_nf`` adds this project's families).
* ``:key=value,...``: keyword arguments for ``timm.create_model``; values are Python literals where they parse
  (``depth=56``, ``alpha=0.2``, ``conv_bias=True``), strings otherwise (``act_layer=relu``, ``norm=none``).
  Example: ``crelu_resnet110:act_layer=relu,norm=none`` is Shang et al.'s plain ReLU ResNet-110.
* ``+transform``: a model transform of `timm_nf.analysis.adapters.TRANSFORMS`, applied after creation;
  ``+unscaled`` turns an NF-ResNet into Brock et al.'s baseline with plain He-initialized convs and no alpha/beta.
"""
import ast
import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional, Tuple

import torch
import torch.nn as nn

from .adapters import TRANSFORMS

__all__ = ['AnalysisError', 'ModelSpec', 'parse_model_spec', 'create_analysis_model', 'model_input_size',
           'noise_batches', 'dataset_batches']


class AnalysisError(ValueError):
    """A user-facing problem with the analysis request (unknown model, bad size, bad dataset...)."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec (see the module docstring)."""
    text: str
    name: str
    kwargs: Dict[str, Any] = field(default_factory=dict)
    transforms: Tuple[str, ...] = ()


def _literal(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def parse_model_spec(text: str) -> ModelSpec:
    """Parse ``NAME[:key=value,...][+transform...]`` (see the module docstring)."""
    head, *transforms = text.strip().split('+')
    name, _, args = head.partition(':')
    kwargs: Dict[str, Any] = {}
    if args:
        # Split on commas that start a new ``key=``, so tuple values such as ``depths=(3,4,6,3)`` stay whole.
        for item in re.split(r',(?=\s*[A-Za-z_]\w*\s*=)', args):
            key, eq, value = item.partition('=')
            if not eq or not key.strip().isidentifier():
                raise AnalysisError(f'bad model argument {item!r} in {text!r}; expected key=value')
            kwargs[key.strip()] = _literal(value.strip())
    for t in transforms:
        if t not in TRANSFORMS:
            raise AnalysisError(f'unknown model transform {t!r} in {text!r}; available: {", ".join(TRANSFORMS)}')
    if not name:
        raise AnalysisError(f'empty model name in spec {text!r}')
    return ModelSpec(text.strip(), name.strip(), kwargs, tuple(transforms))


def create_analysis_model(
        spec: str,
        pretrained: bool = False,
        checkpoint: Optional[str] = None,
        seed: Optional[int] = 0,
) -> nn.Module:
    """Create the model of `spec` (timm registry), load weights if asked, apply the spec's transforms.

    Args:
        spec: Model spec (see the module docstring).
        pretrained: Load timm's pretrained weights.
        checkpoint: Path of a checkpoint for ``timm.models.load_checkpoint``.
        seed: Seeds torch before creation, so an init-time analysis is reproducible (None: leave the RNG alone).

    Raises:
        AnalysisError: Unknown model (with close names), bad kwargs, or weights that cannot be loaded.
    """
    import timm  # this package lives in timm_nf, whose import registered the project's families already
    ms = parse_model_spec(spec)
    if not timm.is_model(ms.name):
        close = difflib.get_close_matches(ms.name, timm.list_models(), n=5, cutoff=0.6)
        hint = f' Did you mean: {", ".join(close)}?' if close else ''
        raise AnalysisError(f'unknown model {ms.name!r} (not in timm\'s registry).{hint}')
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = timm.create_model(ms.name, pretrained=pretrained, **ms.kwargs)
    except TypeError as e:
        raise AnalysisError(f'cannot create {spec!r}: {e}') from e
    except ValueError as e:
        raise AnalysisError(f'cannot create {spec!r}: {e}') from e
    if checkpoint:
        from timm.models import load_checkpoint
        try:
            load_checkpoint(model, checkpoint)
        except Exception as e:  # missing file, wrong keys/shapes
            raise AnalysisError(f'cannot load checkpoint {checkpoint!r} into {spec!r}: {e}') from e
    for t in ms.transforms:
        model = TRANSFORMS[t](model)
    return model


def model_input_size(model: nn.Module, img_size: Optional[int] = None) -> Tuple[int, int, int]:
    """``(channels, height, width)`` for `model`: its pretrained cfg's input size, or `img_size` square.

    Raises:
        AnalysisError: When `img_size` is not positive, or the model declares a fixed input size that differs.
    """
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    chans, height, width = cfg.get('input_size', (getattr(model, 'in_chans', 3), 224, 224))
    chans = getattr(model, 'in_chans', chans)
    if img_size is None:
        return chans, height, width
    if img_size < 1:
        raise AnalysisError(f'--img-size must be a positive number of pixels, got {img_size}')
    if cfg.get('fixed_input_size', False) and (img_size, img_size) != (height, width):
        raise AnalysisError(
            f'{type(model).__name__} only accepts {height}x{width} inputs (fixed_input_size), '
            f'not {img_size}x{img_size}')
    return chans, img_size, img_size


def noise_batches(
        input_size: Tuple[int, int, int],
        batch_size: int,
        num_batches: int = 1,
        seed: int = 0,
) -> Iterator[torch.Tensor]:
    """`num_batches` N(0, 1) batches of shape ``(batch_size, *input_size)`` (Brock et al.'s SPP input)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(num_batches):
        yield torch.randn((batch_size, *input_size), generator=g)


def dataset_batches(
        model: nn.Module,
        dataset: str,
        data_dir: Optional[str],
        split: str,
        input_size: Tuple[int, int, int],
        batch_size: int,
        num_batches: int = 1,
        seed: int = 0,
) -> Iterator[torch.Tensor]:
    """Batches of real images, preprocessed by the model's eval transform (resize, center crop, mean/std).

    `dataset`, `data_dir` and `split` mean what they mean in ``train/train.py``: `timm_nf.data.create_dataset`
    (timm's `create_dataset` plus the embedded ``digits``). A seeded random subset of
    ``batch_size * num_batches`` images is used.

    Raises:
        AnalysisError: When the dataset cannot be created or has too few images.
    """
    from timm.data import create_transform, resolve_data_config
    try:
        from timm_nf.data import DatasetError, create_dataset
    except ImportError:  # the project's data helpers are optional for the analysis
        from timm.data import create_dataset
        DatasetError = Exception
    try:
        ds = create_dataset(dataset, root=data_dir, split=split)
    except DatasetError as e:
        raise AnalysisError(str(e)) from e
    cfg = resolve_data_config({'input_size': input_size}, model=model)
    ds.transform = create_transform(**cfg, is_training=False)
    want = batch_size * num_batches
    if len(ds) < want:
        raise AnalysisError(f'dataset {dataset!r} split {split!r} has {len(ds)} images, fewer than '
                            f'--batch-size x --num-batches = {want}')
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:want].tolist()
    for b in range(num_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        yield torch.stack([ds[i][0] for i in idx])
