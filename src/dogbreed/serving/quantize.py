"""Int8 post-training static quantization of a model directory's ONNX export (ONNX Runtime).

    quantize_model_dir(model_dir, calibration_images)   # writes model_dir/model.int8.onnx

Convolutions and their activations become int8 (QDQ format, per-channel weights); the first
convolution and the classifier head stay fp32, which keeps top-1 agreement with the fp32 model high
at little cost. Serve it with `dogbreed serve --onnx-file model.int8.onnx` (DOGBREED_ONNX_FILE).
Calibration images should look like production traffic and must not be the evaluation images.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

INT8_ONNX_FILE = "model.int8.onnx"
CALIBRATION_PERCENTILE = 99.99


def calibration_inputs(
    images: Iterable[bytes], image_size: int
) -> Iterator[np.ndarray[Any, np.dtype[np.float32]]]:
    """Encoded images -> preprocessed (1, 3, S, S) arrays, exactly as serving preprocesses them."""
    from dogbreed_job import transforms
    from PIL import Image

    for data in images:
        yield transforms.preprocess(Image.open(io.BytesIO(data)).convert("RGB"), image_size)[None]


def quantize_model_dir(
    model_dir: Path, calibration_images: Iterable[bytes], *, out_name: str = INT8_ONNX_FILE
) -> Path:
    import onnx
    from dogbreed_job import artifacts
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    config = artifacts.ModelConfig.load(model_dir)
    source = model_dir / artifacts.ONNX_FILE
    target = model_dir / out_name
    inputs = list(calibration_inputs(calibration_images, config.image_size))
    if not inputs:
        raise ValueError("quantization needs at least one calibration image")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([{"input": array} for array in inputs])

        def get_next(self) -> dict[str, Any] | None:
            return next(self._items, None)

    with tempfile.TemporaryDirectory(prefix="dogbreed-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        nodes = onnx.load(str(prepared)).graph.node
        convs = [node.name for node in nodes if node.op_type == "Conv"]
        heads = [node.name for node in nodes if node.op_type in ("Gemm", "MatMul")]
        quantize_static(
            str(prepared),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            nodes_to_exclude=convs[:1] + heads,
            extra_options={"CalibPercentile": CALIBRATION_PERCENTILE},
        )
    return target
