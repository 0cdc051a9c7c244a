"""A tiny trained classifier for smoke tests, the reliability suites and load runs.

It is the real model code (resnet18 from `dogbreed_job.model`, exported by `export_model_dir` with
ONNX, classes and `code/`), trained in a few seconds to map "dominant colour channel -> class", so a
request has a known right answer without the real dataset.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

TINY_CLASSES = ("Red_setter", "Green_hound", "Blue_heeler")
TINY_IMAGE_SIZE = 32
TINY_MODEL_VERSION = "tiny-test-1"


def solid_color_image(class_index: int, size: int, seed: int = 0) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """An HxWx3 uint8 image whose dominant channel is `class_index` (the tiny model's learnable signal)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, size=(size, size, 3))
    image[..., class_index] += 150
    return image.clip(0, 255).astype(np.uint8)


def solid_color_jpeg(class_index: int, size: int = 48, seed: int = 0) -> bytes:
    """`solid_color_image` encoded as JPEG: a request body the tiny model classifies correctly."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(solid_color_image(class_index, size, seed)).save(buffer, format="JPEG")
    return buffer.getvalue()


def train_tiny_model(model_dir: Path, *, version: str = TINY_MODEL_VERSION) -> Path:
    """Train the tiny model (a few seconds on a CPU) and write a complete model directory."""
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
        model_version=version,
    )
    return export_model_dir(model, model_dir=model_dir, classes=list(TINY_CLASSES), config=config)
