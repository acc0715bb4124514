"""Training transform of the CIFAR recipes: zero-pad, random crop, optional flip (no resize).

timm's default training transform (random-resized-crop with scale 0.08-1 plus horizontal flip) suits
ImageNet photos. On 32x32 CIFAR images and on digits it throws away most of a tiny image and, for digits,
mirrors characters into other characters. The CIFAR recipes (He et al. 2016; fb.resnet.torch `cifar10.lua`)
instead pad 4 pixels with zeros and take a random 32x32 crop, plus a horizontal flip for CIFAR only.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torchvision import transforms

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.auto_augment import auto_augment_transform, rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import MaybePILToTensor, MaybeToTensor, str_to_pil_interp

__all__ = ['PAD_CROP_MODE', 'transforms_pad_crop_train']

# Value of timm's `--train-crop-mode` flag that selects this transform.
PAD_CROP_MODE = 'pad'


def transforms_pad_crop_train(
        img_size: Union[int, Tuple[int, int]] = 32,
        padding: int = 4,
        hflip: float = 0.,
        vflip: float = 0.,
        auto_augment: Optional[str] = None,
        interpolation: str = 'bilinear',
        mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        std: Sequence[float] = IMAGENET_DEFAULT_STD,
        re_prob: float = 0.,
        re_mode: str = 'const',
        re_count: int = 1,
        re_num_splits: int = 0,
        use_prefetcher: bool = False,
) -> transforms.Compose:
    """Pad-and-random-crop training transform, the output format matching timm's `create_transform`.

    Images whose size differs from `img_size` are first resized to it, so the transform also serves other
    datasets at a chosen `--img-size`.

    Args:
        img_size: Output size (square int or (h, w)).
        padding: Zero padding added on every side before the random crop (4 in the CIFAR recipes).
        hflip: Horizontal flip probability (0.5 for CIFAR, 0 for digits: a mirrored digit is another glyph).
        vflip: Vertical flip probability.
        auto_augment: Optional timm AutoAugment / RandAugment / AugMix config string (e.g. 'rand-m9-mstd0.5').
        interpolation: Interpolation of the optional resize and of the augmentations.
        mean: Normalization mean (used here only without the prefetcher, and for AutoAugment fill).
        std: Normalization std (used here only without the prefetcher).
        re_prob: Random erasing probability (applied here only without the prefetcher, as in timm).
        re_mode: Random erasing fill mode.
        re_count: Random erasing regions.
        re_num_splits: Random erasing batch splits.
        use_prefetcher: Output uint8 tensors for timm's prefetcher, which normalizes and erases on device.

    Returns:
        The composed transform.
    """
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    interp = interpolation if interpolation and interpolation != 'random' else 'bilinear'
    tfl = [
        transforms.Resize(size, interpolation=str_to_pil_interp(interp)),
        transforms.RandomCrop(size, padding=padding, fill=0, padding_mode='constant'),
    ]
    if hflip > 0.:
        tfl.append(transforms.RandomHorizontalFlip(p=hflip))
    if vflip > 0.:
        tfl.append(transforms.RandomVerticalFlip(p=vflip))
    if auto_augment:
        aa_params = dict(
            translate_const=int(min(size) * 0.45),
            img_mean=tuple(min(255, round(255 * x)) for x in mean),
            interpolation=str_to_pil_interp(interp),
        )
        if auto_augment.startswith('rand'):
            tfl.append(rand_augment_transform(auto_augment, aa_params))
        else:
            tfl.append(auto_augment_transform(auto_augment, aa_params))
    if use_prefetcher:
        tfl.append(MaybePILToTensor())
    else:
        tfl += [MaybeToTensor(), transforms.Normalize(mean=torch.tensor(mean), std=torch.tensor(std))]
        if re_prob > 0.:
            tfl.append(RandomErasing(re_prob, mode=re_mode, max_count=re_count, num_splits=re_num_splits,
                                     device='cpu'))
    return transforms.Compose(tfl)
