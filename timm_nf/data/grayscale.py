"""The item side shared by the in-memory grayscale datasets (`digits`, `fashion_mnist`)."""
from typing import Any, Callable, Optional, Tuple

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

__all__ = ['GrayscaleImageDataset']


class GrayscaleImageDataset(Dataset):
    """uint8 images (N, H, W) and int targets (N,) held in memory, served as timm's `ImageDataset` serves files.

    Items are `(PIL.Image RGB, int target)` before `transform` / `target_transform`, so timm's transforms and
    `create_loader` (which sets `.transform`) apply unchanged. Subclasses set `images`, `targets`, `transform`,
    `target_transform` and `num_classes`.
    """
    images: np.ndarray
    targets: np.ndarray
    transform: Optional[Callable] = None
    target_transform: Optional[Callable] = None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Tuple[Any, Any]:
        # Grayscale replicated to RGB so that 3-channel models and per-channel mean/std apply unchanged.
        img = Image.fromarray(self.images[index], mode='L').convert('RGB')
        target = int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
