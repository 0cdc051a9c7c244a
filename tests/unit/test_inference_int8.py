"""Int8 quantization of a model directory's ONNX export, served through the same handler."""

from __future__ import annotations

import shutil
from pathlib import Path

import inference
import pytest
from dogbreed_job import serving_model

from dogbreed.bench.tiny_model import solid_color_jpeg
from dogbreed.serving.quantize import INT8_ONNX_FILE, quantize_model_dir


def jpeg(class_index: int, seed: int) -> bytes:
    return solid_color_jpeg(class_index, 64, seed=seed)


def test_int8_model_is_written_and_agrees_with_fp32(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    calibration = [jpeg(c, seed) for seed in (100, 101) for c in range(3)]
    target = quantize_model_dir(model_dir, calibration)
    assert target == model_dir / INT8_ONNX_FILE

    fp32 = serving_model.load_model(model_dir)
    monkeypatch.setenv(serving_model.ONNX_FILE_ENV, INT8_ONNX_FILE)
    int8 = serving_model.load_model(model_dir)
    assert int8.backend == "onnx"
    requests = [inference.parse_request(jpeg(c, 200 + c), "image/jpeg", fp32.image_size) for c in range(3)]
    fp32_top1 = [doc["predictions"][0]["class_index"] for doc in inference.predict_many(requests, fp32)]
    int8_docs = inference.predict_many(requests, int8)
    assert [doc["predictions"][0]["class_index"] for doc in int8_docs] == fp32_top1 == [0, 1, 2]
    for doc in int8_docs:
        assert sum(p["probability"] for p in doc["predictions"]) == pytest.approx(1.0, abs=1e-4)


def test_quantization_needs_calibration_images(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    with pytest.raises(ValueError, match="calibration"):
        quantize_model_dir(model_dir, [])
