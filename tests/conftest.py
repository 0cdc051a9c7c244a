"""Fixtures shared across test areas."""

from __future__ import annotations

from pathlib import Path

import pytest

from dogbreed.bench.tiny_model import TINY_CLASSES, TINY_IMAGE_SIZE, solid_color_image, train_tiny_model

__all__ = ["TINY_CLASSES", "TINY_IMAGE_SIZE", "solid_color_image"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny model directory (resnet18, 3 classes, 32 px) written by `export_model_dir`: weights,
    config, classes, verified ONNX export and code/. It learns "dominant colour channel -> class"."""
    return train_tiny_model(tmp_path_factory.mktemp("tiny_model") / "model")
