"""Fashion-MNIST (Zalando Research) read from its official IDX files, as a timm-style image dataset.

70,000 real 28x28 grayscale photos of clothing in 10 balanced classes (Xiao, Rasul & Vollgraf 2017, MIT
licence). The files come from Debian's package `dataset-fashion-mnist` (`apt-get install dataset-fashion-mnist`
puts them in `/usr/share/datasets/fashion-mnist/`) or from any folder (`root`, i.e. `--data-dir`) holding
`{train,t10k}-{images-idx3,labels-idx1}-ubyte`, gzipped (`.gz`) or not. Nothing is ever downloaded.

Images are replicated to RGB, so every registered model name builds its usual 3-channel stem.

Splits (fixed: stratified by class, seed 0):

* `train`: the official 60,000 training images minus `validation` (55,000).
* `validation` (`val`): 5,000 of the official training images (500 per class). The only split that selects
  anything: seeds, learning rates, `model_best`. Files of another size (tests write tiny ones) keep the same
  proportion, 1/12 of the training file.
* `test`: the official 10,000 test images (`t10k`). Only reported (`validate.py --split test`); training
  refuses it as a train or validation split.

Each split is kept in a fixed stratified order (`stratified_order`), so `num_samples=N` (`--train-num-samples N`)
is a fixed subset with every class in proportion, and a smaller subset is part of a larger one.
"""
import gzip
import math
import os
import zlib
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .errors import DatasetError
from .grayscale import GrayscaleImageDataset

__all__ = [
    'FashionMnistDataset', 'FASHION_MNIST_CLASSES', 'FASHION_MNIST_DEBIAN_DIR', 'FASHION_MNIST_IMG_SIZE',
    'FASHION_MNIST_NUM_CLASSES', 'FASHION_MNIST_PACKAGE', 'FASHION_MNIST_SPLITS', 'FASHION_MNIST_VAL_SIZE',
    'read_idx', 'stratified_order',
]

FASHION_MNIST_PACKAGE = 'dataset-fashion-mnist'
FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
FASHION_MNIST_IMG_SIZE = 28
FASHION_MNIST_CLASSES = (
    'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
FASHION_MNIST_NUM_CLASSES = len(FASHION_MNIST_CLASSES)
# Validation images taken from the official training file of FASHION_MNIST_TRAIN_SIZE images.
FASHION_MNIST_VAL_SIZE = 5000
FASHION_MNIST_TRAIN_SIZE = 60000
FASHION_MNIST_SPLIT_SEED = 0
# Split names accepted by `split=` -> the split; 'val' is an alias because timm's folder datasets accept it too.
FASHION_MNIST_SPLITS: Dict[str, str] = {'train': 'train', 'validation': 'validation', 'val': 'validation',
                                        'test': 'test'}
# The official file pair each split is drawn from.
_FILES = {'train': 'train', 'validation': 'train', 'test': 't10k'}

# IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b'\x1f\x8b'
_FIX_FILE = f'replace it with the official file (Debian: apt-get install --reinstall {FASHION_MNIST_PACKAGE})'

_cache: Dict[Tuple, np.ndarray] = {}


def read_idx(path: str, magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzipped or not, told apart by content) whose magic number must be `magic`.

    Args:
        path: The file.
        magic: `IDX_IMAGES_MAGIC` (3 dimensions) or `IDX_LABELS_MAGIC` (1 dimension).

    Returns:
        uint8 array of the dimensions the header declares.

    Raises:
        DatasetError: The file is not gzip / IDX of that kind, is truncated, or has bytes past its data.
    """
    with open(path, 'rb') as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:  # EOFError: cut short; BadGzipFile / zlib.error: corrupt
            raise DatasetError(f'{path} is a truncated or corrupt gzip file ({e}); {_FIX_FILE}') from e
    ndim = magic & 0xff
    kind = 'image' if magic == IDX_IMAGES_MAGIC else 'label'
    found = int.from_bytes(data[:4], 'big') if len(data) >= 4 else None
    if found != magic:
        found_text = f'0x{found:08x}' if found is not None else f'only {len(data)} bytes'
        raise DatasetError(f'{path} is not an IDX {kind} file (magic number {found_text}, expected '
                           f'0x{magic:08x}); {_FIX_FILE}')
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f'{path} is truncated: {len(data)} bytes, shorter than its IDX header; {_FIX_FILE}')
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    expected = header + math.prod(dims)
    if len(data) != expected:
        problem = 'is truncated' if len(data) < expected else 'has extra bytes'
        shape = 'x'.join(str(d) for d in dims)
        raise DatasetError(f'{path} {problem}: its header declares {shape} bytes of data ({expected} bytes in all) '
                           f'but it holds {len(data)}; {_FIX_FILE}')
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find_file(root: Optional[str], stem: str) -> str:
    folder = root or FASHION_MNIST_DEBIAN_DIR
    for name in (stem, stem + '.gz'):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    if root:
        where = f'--data-dir {root!r} does not exist' if not os.path.isdir(root) else \
            f'--data-dir {root!r} has no {stem} or {stem}.gz'
        raise DatasetError(f'{where}; pass the folder holding the Fashion-MNIST IDX files, or drop --data-dir to '
                           f'use those of apt-get install {FASHION_MNIST_PACKAGE}')
    raise DatasetError(f'Fashion-MNIST is not installed ({folder} has no {stem}.gz); install it with '
                       f'apt-get install {FASHION_MNIST_PACKAGE}, or pass --data-dir with the IDX files')


def _load_file_pair(root: Optional[str], prefix: str) -> Tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) and int64 labels (N,) of `<prefix>-images-idx3-ubyte` / `<prefix>-labels-idx1-ubyte`."""
    images_path = _find_file(root, f'{prefix}-images-idx3-ubyte')
    labels_path = _find_file(root, f'{prefix}-labels-idx1-ubyte')
    # Read once per process; a file changed on disk (size or time) is read again.
    key = tuple((os.path.abspath(p), os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in (images_path, labels_path))
    if key not in _cache:
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        size = FASHION_MNIST_IMG_SIZE
        if images.shape[1:] != (size, size):
            raise DatasetError(f'{images_path} holds {images.shape[1]}x{images.shape[2]} images, not the '
                               f'{size}x{size} of Fashion-MNIST; {_FIX_FILE}')
        if len(labels) != len(images):
            raise DatasetError(f'{labels_path} has {len(labels)} labels for the {len(images)} images of '
                               f'{images_path}; {_FIX_FILE}')
        if len(labels) and labels.max() >= FASHION_MNIST_NUM_CLASSES:
            raise DatasetError(f'{labels_path} has label {labels.max()}, Fashion-MNIST has classes 0-'
                               f'{FASHION_MNIST_NUM_CLASSES - 1}; {_FIX_FILE}')
        _cache.clear()  # one pair at a time is enough (train + validation share it) and bounds memory
        _cache[key] = (images, labels.astype(np.int64))
    return _cache[key]


def stratified_order(targets: np.ndarray, seed: int = FASHION_MNIST_SPLIT_SEED) -> np.ndarray:
    """Indices of `targets` in a fixed order whose every prefix holds each class in proportion.

    Each class is shuffled (seeded), then the samples are sorted by their rank within their class as a fraction of
    the class size, so the first N indices hold each class within about one sample of its share of N (exactly
    N / 10 per class for 10 balanced classes and N a multiple of 10), and a shorter prefix is part of a longer one.
    """
    perm = np.random.default_rng(seed).permutation(len(targets))
    shuffled = targets[perm]
    position = np.empty(len(targets))
    for c in np.unique(shuffled):
        members = np.flatnonzero(shuffled == c)
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    # Stable: samples of different classes at the same position stay in the seeded random order.
    return perm[np.argsort(position, kind='stable')]


def _split_indices(split: str, targets: np.ndarray, val_size: int, seed: int) -> np.ndarray:
    order = stratified_order(targets, seed)
    if split == 'validation':
        return order[:val_size]
    if split == 'train':
        return order[val_size:]  # the rest of the same order: its prefixes are stratified too
    return order


class FashionMnistDataset(GrayscaleImageDataset):
    """Fashion-MNIST at 28x28 RGB (gray replicated), with fixed stratified train / validation / test splits.

    Items are `(PIL.Image RGB 28x28, int target)` before `transform` / `target_transform`, like timm's
    `ImageDataset`, so timm's transforms and `create_loader` (which sets `.transform`) apply unchanged.

    Args:
        split: 'train', 'validation' ('val' too) or 'test' (see the module docstring).
        root: Folder holding the IDX files (default: where Debian's `dataset-fashion-mnist` installs them).
        transform: Image transform, usually set later by `timm.data.create_loader`.
        target_transform: Target transform.
        num_samples: Use the first `num_samples` images of the split's fixed stratified order: a fixed subset
            with every class in proportion (e.g. 10,000 training images, 1,000 per class).
        val_size: Validation images taken from the training file (default: 5,000 of the official 60,000, the
            same proportion for files of another size).
        seed: Seed of the split and of the stratified order.

    Raises:
        DatasetError: Unknown split, files missing, truncated or foreign, or `num_samples` / `val_size` out of
            range.
    """

    def __init__(
            self,
            split: str = 'train',
            root: Optional[str] = None,
            transform: Optional[Callable] = None,
            target_transform: Optional[Callable] = None,
            num_samples: Optional[int] = None,
            val_size: Optional[int] = None,
            seed: int = FASHION_MNIST_SPLIT_SEED,
    ):
        if split not in FASHION_MNIST_SPLITS:
            raise DatasetError(f"unknown split {split!r} for dataset 'fashion_mnist'; use one of "
                               f"{', '.join(sorted(FASHION_MNIST_SPLITS))}")
        self.split = FASHION_MNIST_SPLITS[split]
        images, targets = _load_file_pair(root, _FILES[self.split])
        n_file = len(targets)
        if val_size is None:
            val_size = round(n_file * FASHION_MNIST_VAL_SIZE / FASHION_MNIST_TRAIN_SIZE)
        if self.split != 'test' and not 0 < val_size < n_file:
            raise DatasetError(f'validation size {val_size} does not fit the {n_file} images of the Fashion-MNIST '
                               f'training file; use 0 < val_size < {n_file}')
        indices = _split_indices(self.split, targets, val_size, seed)
        if num_samples is not None:
            if not 0 < num_samples <= len(indices):
                raise DatasetError(f'num_samples {num_samples} does not fit Fashion-MNIST split {self.split!r} of '
                                   f'{len(indices)} images; use 1 to {len(indices)}')
            indices = indices[:num_samples]
        self.indices = indices  # positions in the official file (train or t10k)
        self.images = images[indices]
        self.targets = targets[indices]
        self.transform = transform
        self.target_transform = target_transform
        self.class_to_idx = {name: i for i, name in enumerate(FASHION_MNIST_CLASSES)}

    @property
    def num_classes(self) -> int:
        return FASHION_MNIST_NUM_CLASSES

    def filenames(self, basename: bool = False, absolute: bool = False) -> List[str]:
        """Names `fashion_mnist/<official file>/<index in it>`, for code that asks a timm dataset for file names."""
        prefix = _FILES[self.split]
        return [f'fashion_mnist/{prefix}/{i}' for i in self.indices]

    def __repr__(self) -> str:
        return f'{type(self).__name__}(split={self.split!r}, num_samples={len(self)})'
