"""`create_dataset`: timm's dataset factory plus the embedded `digits` dataset, with one-line errors.

Every name timm's `create_dataset` understands works unchanged (image folder or tar by default, `torch/...`,
`hfds/...`, `hfids/...`, `tfds/...`, `wds/...`). What this wrapper adds:

* `digits`: scikit-learn's bundled handwritten digits (`timm_nf.data.digits`), no `--data-dir`, no download.
* `fashion_mnist`: Fashion-MNIST from its IDX files (`timm_nf.data.fashion_mnist`): Debian's
  `dataset-fashion-mnist` package or `--data-dir`, never downloaded, splits train / validation / test. timm's
  `torch/fashion_mnist` is refused in its favour: it downloads, and takes the official test set for any split
  other than train, so selecting on "validation" would select on test.
* `check_training_splits`: a training run may neither train nor select on a split that is only reported (the
  official test set of `fashion_mnist`).
* Checks before timm is called, because timm treats any unprefixed name as "image folder" and a missing root
  as an assertion: an unknown dataset name or a missing data directory is reported as `DatasetError` with a
  message that names the problem and the fix.
"""
import os
from typing import Any, Optional

from timm.data import create_dataset as timm_create_dataset

from .digits import DIGITS_SPLITS, DigitsDataset
from .errors import DatasetError
from .fashion_mnist import FASHION_MNIST_PACKAGE, FashionMnistDataset

__all__ = [
    'DatasetError', 'create_dataset', 'check_training_splits', 'dataset_num_classes', 'KNOWN_DATASETS_HELP',
    'REPORT_ONLY_SPLITS',
]

# Unprefixed names that mean timm's default image folder / tar reader.
_FOLDER_NAMES = ('', 'folder', 'imagefolder', 'image_folder', 'tar')
# Prefixed readers handled by timm; torch/ names are checked against torchvision's classes timm knows.
_PREFIXES = ('torch', 'hfds', 'hfids', 'tfds', 'wds')
_TORCH_NAMES = (
    'cifar10', 'cifar100', 'mnist', 'kmnist', 'inaturalist', 'inat', 'places365', 'qmnist', 'imagenet',
    'image_folder', 'folder',
)
# Datasets of this package (no prefix, no download).
_OWN_NAMES = ('digits', 'fashion_mnist')
KNOWN_DATASETS_HELP = (
    "'digits' (embedded, no download), 'fashion_mnist' (Debian's dataset-fashion-mnist files or --data-dir, no "
    "download), '' / 'folder' (image folder or .tar at --data-dir, the default), 'torch/<name>', 'hfds/<name>', "
    "'hfids/<name>', 'tfds/<name>', 'wds/<name>'"
)
# Splits only ever reported (validate.py --split ...), never trained or selected on (seeds, lrs, model_best).
REPORT_ONLY_SPLITS = {'fashion_mnist': ('test',)}


def _check_name(name: str) -> str:
    prefix, sep, rest = name.partition('/')
    if not sep:
        if name.lower() in _FOLDER_NAMES or name.lower() in _OWN_NAMES:
            return name.lower()
        raise DatasetError(f'unknown dataset {name!r}; use one of {KNOWN_DATASETS_HELP}')
    if prefix.lower() not in _PREFIXES or not rest:
        raise DatasetError(f'unknown dataset {name!r}; use one of {KNOWN_DATASETS_HELP}')
    if prefix.lower() == 'torch' and rest.lower() == 'fashion_mnist':
        raise DatasetError(
            "timm's torch/fashion_mnist downloads and takes the official test set for every split but train; use "
            "--dataset fashion_mnist (Debian's dataset-fashion-mnist files or --data-dir; train / validation / test)")
    if prefix.lower() == 'torch' and rest.lower() not in _TORCH_NAMES:
        raise DatasetError(
            f"unknown torchvision dataset {name!r}; timm supports torch/ + one of {', '.join(_TORCH_NAMES)}")
    return name


def create_dataset(
        name: str,
        root: Optional[str] = None,
        split: str = 'validation',
        is_training: bool = False,
        num_samples: Optional[int] = None,
        download: bool = False,
        **kwargs: Any,
):
    """Create a dataset by name, like `timm.data.create_dataset`, adding `digits` and clear errors.

    Args:
        name: Dataset name, see `KNOWN_DATASETS_HELP` ('' is the image folder / tar at `root`).
        root: Data directory (unused by `digits`; for `fashion_mnist` default: the Debian package's folder).
        split: Split name ('train', 'validation', ...). For folders timm picks `root/<split>` if it exists.
        is_training: Passed to timm (shuffling of iterable datasets).
        num_samples: For `digits`, use the first N images of the split; for `fashion_mnist` a fixed stratified
            subset of N; for iterable datasets, timm's meaning.
        download: Allow torchvision / TFDS downloads (refused for `fashion_mnist`, never needed for `digits`).
        **kwargs: Passed through to `timm.data.create_dataset` (class_map, input_img_mode, batch_size, seed, ...).

    Returns:
        The dataset (items are `(image, target)`).

    Raises:
        DatasetError: Unknown name or split, missing or empty data directory, or any failure of the reader.
    """
    name = _check_name(name or '')
    if name == 'digits':
        if split not in DIGITS_SPLITS:
            raise DatasetError(
                f"unknown split {split!r} for dataset 'digits'; use one of {', '.join(sorted(DIGITS_SPLITS))}")
        return DigitsDataset(split, num_samples=num_samples)
    if name == 'fashion_mnist':
        if download:
            raise DatasetError(
                f'fashion_mnist is never downloaded; drop --dataset-download (files: apt-get install '
                f'{FASHION_MNIST_PACKAGE}, or --data-dir)')
        return FashionMnistDataset(split, root=root, num_samples=num_samples)

    is_local = name in _FOLDER_NAMES or name.lower().startswith(('torch/', 'wds/'))
    if is_local or not download:
        if is_local and not root:
            raise DatasetError(f'--data-dir is required for dataset {name or "folder"!r} (or use --dataset digits)')
        if root and is_local and not os.path.exists(root) and not download:
            raise DatasetError(f'data dir {root!r} does not exist; pass --data-dir pointing at the dataset root')
    if name in _FOLDER_NAMES:
        name = ''
    try:
        return timm_create_dataset(
            name, root=root, split=split, is_training=is_training, num_samples=num_samples, download=download,
            **kwargs)
    except Exception as e:  # timm / torchvision report problems with asserts, RuntimeError, OSError, ...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatasetError(f'cannot load dataset {name or "folder"!r} split {split!r} from {root!r}: {msg}') from e


def check_training_splits(name: str, train_split: str, val_split: str) -> None:
    """Refuse a training run that would train or select on a split that is only reported.

    Args:
        name: Dataset name (as given to `create_dataset`).
        train_split: The split trained on.
        val_split: The split evaluated every epoch, which picks `model_best` ('' for none).

    Raises:
        DatasetError: `train_split` or `val_split` is one of the dataset's `REPORT_ONLY_SPLITS`.
    """
    report_only = REPORT_ONLY_SPLITS.get((name or '').lower(), ())
    for flag, split, use in (('--train-split', train_split, 'train'), ('--val-split', val_split, 'validation')):
        if split in report_only:
            raise DatasetError(
                f'{name} split {split!r} is only reported (python train/validate.py --split {split}), never '
                f'trained or selected on; use {flag} {use}')


def dataset_num_classes(dataset: Any) -> Optional[int]:
    """Number of classes a dataset declares (digits, image folders, torchvision), or None if unknown."""
    num_classes = getattr(dataset, 'num_classes', None)
    if isinstance(num_classes, int):
        return num_classes
    for obj in (dataset, getattr(dataset, 'reader', None)):
        class_to_idx = getattr(obj, 'class_to_idx', None)
        if class_to_idx:
            return len(class_to_idx)
    classes = getattr(dataset, 'classes', None)
    if classes:
        return len(classes)
    return None
