"""The embedded digits dataset, the CIFAR pad-and-crop transform, the dataset factory, and (opt-in) the README's
main job timed end to end."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from timm.data import create_loader

from timm_nf.data import (
    DatasetError, DigitsDataset, create_dataset, dataset_num_classes, transforms_pad_crop_train,
)

REPO = Path(__file__).resolve().parents[1]


def test_fixed_stratified_split():
    train, val = DigitsDataset('train'), DigitsDataset('validation')
    assert (len(train), len(val)) == (1437, 360)
    assert np.bincount(train.targets).tolist() == [142, 146, 142, 146, 145, 145, 145, 143, 139, 144]
    assert np.bincount(val.targets).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]
    # Fixed: the same images in the same order every time (seed 0), 'val' is an alias.
    again = DigitsDataset('val')
    assert np.array_equal(again.images, val.images) and np.array_equal(again.targets, val.targets)
    assert dataset_num_classes(train) == 10


def test_items_are_32px_rgb_images():
    img, target = DigitsDataset('train')[0]
    assert isinstance(img, Image.Image) and img.mode == 'RGB' and img.size == (32, 32)
    assert isinstance(target, int) and 0 <= target < 10
    pixels = np.asarray(img)
    assert np.array_equal(pixels[..., 0], pixels[..., 1])  # grayscale replicated
    assert pixels.max() > 200 and pixels.min() == 0  # full range, black background


def test_num_samples_and_bad_split():
    assert len(DigitsDataset('train', num_samples=100)) == 100
    with pytest.raises(ValueError, match="unknown split 'test'"):
        DigitsDataset('test')


def test_pad_crop_transform_keeps_size_and_never_flips():
    tf = transforms_pad_crop_train(32, padding=4, hflip=0.)
    assert not any(isinstance(t, transforms.RandomHorizontalFlip) for t in tf.transforms)
    img, _ = DigitsDataset('train')[0]
    torch.manual_seed(0)
    outs = [tf(img) for _ in range(20)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    # A pad-4 crop is a shift of at most 4 px: some crops differ from the image, the ink is preserved.
    original = transforms.functional.to_tensor(img)
    assert any(not torch.equal(transforms.functional.normalize(original, tf.transforms[-1].mean,
                                                                 tf.transforms[-1].std), o) for o in outs)
    prefetch = transforms_pad_crop_train(32, padding=4, use_prefetcher=True)
    out = prefetch(img)
    assert out.dtype == torch.uint8 and out.shape == (3, 32, 32)
    with_flip = transforms_pad_crop_train(32, hflip=0.5).transforms
    assert any(isinstance(t, transforms.RandomHorizontalFlip) for t in with_flip)


def test_works_with_timm_loader():
    dataset = DigitsDataset('validation')
    loader = create_loader(dataset, input_size=(3, 32, 32), batch_size=64, crop_pct=1.0, num_workers=0,
                           device=torch.device('cpu'), use_prefetcher=True)
    images, targets = next(iter(loader))
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.float32 and targets.shape == (64,)


def test_create_dataset_errors(tmp_path: Path):
    assert isinstance(create_dataset('digits', split='train'), DigitsDataset)
    for name, root, phrase in [
        ('nosuch', None, 'unknown dataset'),
        ('torch/cifar11', str(tmp_path), 'unknown torchvision dataset'),
        ('', None, '--data-dir is required'),
        ('', str(tmp_path / 'missing'), 'does not exist'),
        ('', str(tmp_path), 'cannot load dataset'),  # empty folder
    ]:
        with pytest.raises(DatasetError, match=phrase):
            create_dataset(name, root=root, split='validation')
