"""The one definition of image normalization and the resize/crop policy.

Training (evaluation transform), the ONNX/PyTorch serving path and the benchmarks all import these
functions; nothing else may restate the constants. The evaluation and serving path is pure
Pillow + NumPy, so serving does not need to import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from collections.abc import Callable

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_SIZE = 224
# Resize the shorter side to image_size * 256/224, then center-crop image_size (the torchvision
# ImageNet evaluation policy).
RESIZE_RATIO = 256 / 224
RESAMPLE = Image.Resampling.BILINEAR

_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)


def resize_size(image_size: int) -> int:
    """Shorter-side length before the center crop."""
    return round(image_size * RESIZE_RATIO)


def resize_and_center_crop(image: Image.Image, image_size: int) -> Image.Image:
    """Resize the shorter side once and center-crop to `image_size` square, in RGB."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    target = resize_size(image_size)
    width, height = image.size
    scale = target / min(width, height)
    new_size = (max(image_size, round(width * scale)), max(image_size, round(height * scale)))
    image = image.resize(new_size, RESAMPLE)
    left = (new_size[0] - image_size) // 2
    top = (new_size[1] - image_size) // 2
    return image.crop((left, top, left + image_size, top + image_size))


def normalize(image: Image.Image) -> np.ndarray[Any, np.dtype[np.float32]]:
    """RGB image -> CHW float32 array, scaled to [0, 1] and ImageNet-normalized."""
    array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return ((array - _MEAN) / _STD).astype(np.float32, copy=False)


def preprocess(image: Image.Image, image_size: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The evaluation/serving preprocessing: resize once, center-crop, normalize."""
    return normalize(resize_and_center_crop(image, image_size))


def eval_transform(image_size: int) -> Callable[[Image.Image], Any]:
    """torch transform for validation/test data: exactly `preprocess`, as a tensor."""
    import torch

    def transform(image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(preprocess(image, image_size))

    return transform


def train_transform(image_size: int) -> Callable[[Image.Image], Any]:
    """torch transform for training data: augmentation, then the same normalization."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.RandomResizedCrop(image_size, scale=(0.5, 1.0)),
            T.RandomHorizontalFlip(),
            T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
