"""The 8x8 handwritten digits that ship inside scikit-learn, as a timm-style image dataset.

1,797 real 8x8 grayscale digits (UCI "Optical Recognition of Handwritten Digits", 10 classes) are bundled
with scikit-learn (`sklearn.datasets.load_digits`), so this dataset never downloads anything. Images are
upsampled to 32x32 (the CIFAR input size) and replicated to RGB so that CIFAR-layout models and timm's
loaders take them unchanged.

The split is fixed: stratified by class, seed 0, 1,437 `train` / 360 `validation` images.
"""
import os
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from .grayscale import GrayscaleImageDataset

__all__ = ['DigitsDataset', 'DIGITS_SPLITS', 'DIGITS_NUM_CLASSES', 'DIGITS_IMG_SIZE', 'export_image_folder']

DIGITS_NUM_CLASSES = 10
DIGITS_IMG_SIZE = 32
DIGITS_SPLIT_SEED = 0
DIGITS_VAL_SIZE = 360
# Split names accepted by `split=`; 'val' is an alias because timm's folder datasets accept it too.
DIGITS_SPLITS: Dict[str, str] = {'train': 'train', 'validation': 'validation', 'val': 'validation'}

_cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}


def _load_split(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Upsampled uint8 images (N, 32, 32) and int64 targets (N,) of one split, computed once per process."""
    if split not in _cache:
        from timm_nf._extras import require
        load_digits = require('sklearn.datasets', 'digits', 'The embedded digits dataset').load_digits
        train_test_split = require('sklearn.model_selection', 'digits', 'The digits split').train_test_split

        digits = load_digits()
        # Pixel values are counts 0..16 (ink in 4x4 blocks of the original 32x32 bitmaps); scale to 0..255.
        images = np.clip(np.rint(digits.images * (255. / 16.)), 0, 255).astype(np.uint8)
        # Bicubic upsampling gives smooth strokes; nearest would leave 4x4 blocks the model can key on.
        images = np.stack([
            np.asarray(Image.fromarray(img, mode='L').resize((DIGITS_IMG_SIZE, DIGITS_IMG_SIZE), Image.BICUBIC))
            for img in images
        ])
        targets = digits.target.astype(np.int64)
        idx_train, idx_val = train_test_split(
            np.arange(len(targets)),
            test_size=DIGITS_VAL_SIZE,
            stratify=targets,
            random_state=DIGITS_SPLIT_SEED,
        )
        _cache['train'] = (images[idx_train], targets[idx_train])
        _cache['validation'] = (images[idx_val], targets[idx_val])
    return _cache[split]


class DigitsDataset(GrayscaleImageDataset):
    """scikit-learn's 8x8 digits at 32x32 RGB, with the fixed stratified train/validation split.

    Items are `(PIL.Image RGB 32x32, int target)` before `transform` / `target_transform`, like timm's
    `ImageDataset`, so timm's transforms and `create_loader` (which sets `.transform`) apply unchanged.

    Args:
        split: 'train' (1,437 images) or 'validation' (360 images; 'val' is accepted too).
        transform: Image transform, usually set later by `timm.data.create_loader`.
        target_transform: Target transform.
        num_samples: Use only the first `num_samples` images of the split (already shuffled by the split), for
            quick runs and tests.
    """

    def __init__(
            self,
            split: str = 'train',
            transform: Optional[Callable] = None,
            target_transform: Optional[Callable] = None,
            num_samples: Optional[int] = None,
    ):
        if split not in DIGITS_SPLITS:
            raise ValueError(
                f"unknown split {split!r} for dataset 'digits'; use one of {sorted(DIGITS_SPLITS)}")
        self.split = DIGITS_SPLITS[split]
        images, targets = _load_split(self.split)
        if num_samples is not None:
            if num_samples < 1:
                raise ValueError(f'num_samples must be >= 1 for dataset digits, got {num_samples}')
            images, targets = images[:num_samples], targets[:num_samples]
        self.images = images
        self.targets = targets
        self.transform = transform
        self.target_transform = target_transform
        self.class_to_idx = {str(i): i for i in range(DIGITS_NUM_CLASSES)}

    @property
    def num_classes(self) -> int:
        return DIGITS_NUM_CLASSES

    def filenames(self, basename: bool = False, absolute: bool = False) -> List[str]:
        """Synthetic names (`digits/<split>/<index>`), for code that asks a timm dataset for its file names."""
        return [f'digits/{self.split}/{i}' for i in range(len(self))]

    def __repr__(self) -> str:
        return f'{type(self).__name__}(split={self.split!r}, num_samples={len(self)})'


def export_image_folder(root: str) -> Dict[str, int]:
    """Write the digits as an image folder: `<root>/train/<class>/*.png` and `<root>/validation/<class>/*.png`.

    32x32 RGB PNGs, the layout timm's own `train.py --data-dir root` reads, so that timm's scripts can be run on
    the same data as `--dataset digits`. The folder appears whole or not at all (written beside it, then renamed).

    Returns:
        Images written per split.

    Raises:
        FileExistsError: `root` exists already.
    """
    if os.path.exists(root):
        raise FileExistsError(f'{root} exists; remove it or give another folder')
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.digits-', dir=parent)
    counts = {}
    try:
        for split in ('train', 'validation'):
            ds = DigitsDataset(split)
            for cls in ds.class_to_idx:
                os.makedirs(os.path.join(tmp, split, cls))
            for i in range(len(ds)):
                img, target = ds[i]
                img.save(os.path.join(tmp, split, str(target), f'{i:04d}.png'))
            counts[split] = len(ds)
        os.replace(tmp, root)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return counts
