"""Data: the embedded digits dataset, Fashion-MNIST from its IDX files, the CIFAR pad-and-crop transform, and a
`create_dataset` wrapper."""
from .dataset_factory import (
    KNOWN_DATASETS_HELP, REPORT_ONLY_SPLITS, check_training_splits, create_dataset, dataset_num_classes,
)
from .digits import DIGITS_IMG_SIZE, DIGITS_NUM_CLASSES, DIGITS_SPLITS, DigitsDataset
from .errors import DatasetError
from .fashion_mnist import (
    FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_DIR, FASHION_MNIST_IMG_SIZE, FASHION_MNIST_NUM_CLASSES,
    FASHION_MNIST_PACKAGE, FASHION_MNIST_SPLITS, FASHION_MNIST_VAL_SIZE, FashionMnistDataset, read_idx,
    stratified_order,
)
from .transforms import PAD_CROP_MODE, transforms_pad_crop_train

__all__ = [
    'KNOWN_DATASETS_HELP', 'REPORT_ONLY_SPLITS', 'DatasetError', 'check_training_splits', 'create_dataset',
    'dataset_num_classes',
    'DIGITS_IMG_SIZE', 'DIGITS_NUM_CLASSES', 'DIGITS_SPLITS', 'DigitsDataset',
    'FASHION_MNIST_CLASSES', 'FASHION_MNIST_DEBIAN_DIR', 'FASHION_MNIST_IMG_SIZE', 'FASHION_MNIST_NUM_CLASSES',
    'FASHION_MNIST_PACKAGE', 'FASHION_MNIST_SPLITS', 'FASHION_MNIST_VAL_SIZE', 'FashionMnistDataset', 'read_idx',
    'stratified_order',
    'PAD_CROP_MODE', 'transforms_pad_crop_train',
]
