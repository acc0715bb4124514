"""Data: the embedded digits dataset, the CIFAR pad-and-crop transform, and a `create_dataset` wrapper."""
from .dataset_factory import KNOWN_DATASETS_HELP, DatasetError, create_dataset, dataset_num_classes
from .digits import DIGITS_IMG_SIZE, DIGITS_NUM_CLASSES, DIGITS_SPLITS, DigitsDataset
from .transforms import PAD_CROP_MODE, transforms_pad_crop_train

__all__ = [
    'KNOWN_DATASETS_HELP', 'DatasetError', 'create_dataset', 'dataset_num_classes',
    'DIGITS_IMG_SIZE', 'DIGITS_NUM_CLASSES', 'DIGITS_SPLITS', 'DigitsDataset',
    'PAD_CROP_MODE', 'transforms_pad_crop_train',
]
