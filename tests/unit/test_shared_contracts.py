"""The shared contracts: metric lines and their regexes, the preprocessing policy, the model dir."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from dogbreed_job import artifacts, metrics, transforms
from PIL import Image


def test_epoch_line_is_parsed_by_every_regex_it_carries() -> None:
    line = metrics.format_metrics_line(epoch=3, train_loss=0.81, val_loss=0.52, val_acc=0.874)

    assert line == "epoch=3 train_loss=0.810000 val_loss=0.520000 val_acc=0.874000"
    assert metrics.parse_metrics(line) == {"train_loss": 0.81, "val_loss": 0.52, "val_acc": 0.874}


def test_final_value_wins_and_names_do_not_bleed_into_each_other() -> None:
    log = "\n".join(
        [
            "epoch=1 train_loss=2.000000 val_loss=1.500000 val_acc=0.400000",
            "epoch=2 train_loss=1.000000 val_loss=0.900000 val_acc=0.700000",
            "test_acc=0.910000 test_loss=3.2e-01 test_top5=1.000000",
        ]
    )

    parsed = metrics.parse_metrics(log)

    assert parsed == {
        "train_loss": 1.0,
        "val_loss": 0.9,
        "val_acc": 0.7,
        "test_loss": 0.32,
        "test_acc": 0.91,
        "test_top5": 1.0,
    }


def test_objective_metric_has_a_regex() -> None:
    names = {definition["Name"] for definition in metrics.METRIC_DEFINITIONS}
    assert metrics.OBJECTIVE_METRIC in names
    for definition in metrics.METRIC_DEFINITIONS:
        re.compile(definition["Regex"])


@pytest.mark.parametrize("size", [(640, 480), (300, 900), (224, 224), (50, 40)])
def test_preprocess_gives_normalized_square_chw(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size, color=(124, 116, 104))  # ~ the ImageNet mean colour

    array = transforms.preprocess(image, 224)

    assert array.shape == (3, 224, 224)
    assert array.dtype == np.float32
    assert np.abs(array).max() < 0.05


def test_preprocess_converts_grayscale_and_cmyk_to_rgb() -> None:
    for mode in ("L", "CMYK", "RGBA", "P"):
        assert transforms.preprocess(Image.new(mode, (64, 48)), 32).shape == (3, 32, 32)


def test_eval_transform_is_exactly_preprocess() -> None:
    image = Image.effect_mandelbrot((97, 61), (-2.0, -1.0, 1.0, 1.0), 50).convert("RGB")

    tensor = transforms.eval_transform(48)(image)

    assert np.array_equal(tensor.numpy(), transforms.preprocess(image, 48))


def test_model_config_and_classes_round_trip(tmp_path: Path) -> None:
    config = artifacts.ModelConfig(backbone="resnet18", num_classes=2, image_size=64, model_version="v1")
    config.save(tmp_path)
    artifacts.save_classes(tmp_path, ["Affenpinscher", "Labrador_retriever"])

    assert artifacts.ModelConfig.load(tmp_path) == config
    assert artifacts.load_classes(tmp_path) == ["Affenpinscher", "Labrador_retriever"]


def test_breed_name_strips_the_numeric_prefix() -> None:
    assert artifacts.breed_name("096.Labrador_retriever") == "Labrador_retriever"
    assert artifacts.breed_name("no_prefix") == "no_prefix"
