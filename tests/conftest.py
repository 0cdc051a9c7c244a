"""Fixtures shared across test areas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_CLASSES = ("Red_setter", "Green_hound", "Blue_heeler")
TINY_IMAGE_SIZE = 32


def solid_color_image(class_index: int, size: int, seed: int = 0) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """An HxWx3 uint8 image whose dominant channel is `class_index` (the tiny model's learnable signal)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, size=(size, size, 3))
    image[..., class_index] += 150
    return image.clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny model directory (resnet18, 3 classes, 32 px) written by `export_model_dir`: weights,
    config, classes, verified ONNX export and code/. It learns "dominant colour channel -> class"."""
    import torch
    from dogbreed_job import artifacts, transforms
    from dogbreed_job.export import export_model_dir
    from dogbreed_job.model import build_model
    from PIL import Image

    torch.manual_seed(0)
    model = build_model("resnet18", len(TINY_CLASSES), pretrained=False)
    images = [
        (transforms.preprocess(Image.fromarray(solid_color_image(c, 48, seed)), TINY_IMAGE_SIZE), c)
        for seed in range(8)
        for c in range(len(TINY_CLASSES))
    ]
    inputs = torch.from_numpy(np.stack([array for array, _ in images]))
    targets = torch.tensor([label for _, label in images])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(25):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
    model.eval()
    config = artifacts.ModelConfig(
        backbone="resnet18",
        num_classes=len(TINY_CLASSES),
        image_size=TINY_IMAGE_SIZE,
        model_version="tiny-test-1",
    )
    model_dir = tmp_path_factory.mktemp("tiny_model") / "model"
    return export_model_dir(model, model_dir=model_dir, classes=list(TINY_CLASSES), config=config)
