"""The serving handler's model: a model directory loaded for inference, with no network access.

The ONNX Runtime session over `model.onnx` when onnxruntime is importable, else the PyTorch weights
in `model.pth` on the container's own torch (the SageMaker PyTorch image has torch, not onnxruntime;
nothing is pip-installed at start, see docs/serving.md). Nothing is ever downloaded. Thread counts
come from DOGBREED_INFERENCE_THREADS (default: all cores; the local server divides the cores between
its workers). Torch is imported only for the PyTorch fallback.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dogbreed_job import artifacts

logger = logging.getLogger(__name__)

THREADS_ENV = "DOGBREED_INFERENCE_THREADS"
ONNX_FILE_ENV = "DOGBREED_ONNX_FILE"  # e.g. model.int8.onnx for the quantized variant
SPIN_ENV = "DOGBREED_ORT_SPIN"  # 1: let idle ONNX Runtime threads spin (lower latency on idle cores)

ONNX_BACKEND = "onnx"
PYTORCH_BACKEND = "pytorch"

FloatArray = np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class ImageClassifier:
    """A loaded model: `logits(batch)` maps an NCHW float32 batch to (N, num_classes) logits."""

    config: artifacts.ModelConfig
    classes: list[str]
    backend: str  # ONNX_BACKEND or PYTORCH_BACKEND
    logits: Callable[[FloatArray], FloatArray]

    @property
    def model_version(self) -> str:
        return self.config.model_version

    @property
    def image_size(self) -> int:
        return self.config.image_size


def inference_threads() -> int:
    raw = os.environ.get(THREADS_ENV, "")
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, os.cpu_count() or 1)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _onnx_logits(path: Path, threads: int) -> Callable[[FloatArray], FloatArray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # one graph at a time per worker; parallelism is inside ops
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads sleep instead of spinning: the cores are shared with image decoding.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if _env_flag(SPIN_ENV) else "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def run(batch: FloatArray) -> FloatArray:
        (out,) = session.run([output_name], {input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(out, dtype=np.float32)

    return run


def _pytorch_logits(
    model_dir: Path, config: artifacts.ModelConfig, threads: int
) -> Callable[[FloatArray], FloatArray]:
    import torch  # only for the fallback: the ONNX path never imports torch

    from dogbreed_job.model import build_model, load_weights

    torch.set_num_threads(threads)
    network = build_model(config.backbone, config.num_classes, pretrained=False)
    state = torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    load_weights(network, state).eval()

    def run(batch: FloatArray) -> FloatArray:
        with torch.inference_mode():
            out = network(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return np.asarray(out.numpy(), dtype=np.float32)

    return run


def onnxruntime_available() -> bool:
    """Whether onnxruntime imports here (also False when it is installed but cannot load)."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


def load_model(model_dir: str | Path, *, prefer_onnx: bool = True) -> ImageClassifier:
    """Load config, classes and the network from a model directory (no network access)."""
    directory = Path(model_dir)
    config = artifacts.ModelConfig.load(directory)
    classes = artifacts.load_classes(directory)
    if len(classes) != config.num_classes:
        raise ValueError(
            f"{artifacts.CLASSES_FILE} has {len(classes)} names for {config.num_classes} classes"
        )
    threads = inference_threads()
    onnx_path = directory / os.environ.get(ONNX_FILE_ENV, artifacts.ONNX_FILE)
    weights_path = directory / artifacts.WEIGHTS_FILE
    use_onnx = prefer_onnx and onnx_path.is_file()
    if use_onnx and not onnxruntime_available():
        if not weights_path.is_file():
            raise RuntimeError(
                f"onnxruntime is not installed and {directory} has no {artifacts.WEIGHTS_FILE} either"
            )
        # The SageMaker PyTorch image has torch but not onnxruntime, and nothing is installed at start.
        logger.warning(
            "onnxruntime is not installed in this container: serving %s with PyTorch instead of %s",
            artifacts.WEIGHTS_FILE,
            onnx_path.name,
        )
        use_onnx = False
    if use_onnx:
        backend, logits = ONNX_BACKEND, _onnx_logits(onnx_path, threads)
    elif weights_path.is_file():
        backend, logits = PYTORCH_BACKEND, _pytorch_logits(directory, config, threads)
    else:
        raise FileNotFoundError(f"{directory} has neither {onnx_path.name} nor {artifacts.WEIGHTS_FILE}")
    logger.info(
        "loaded model %s (%s, %s backend, %d threads)",
        config.model_version,
        config.backbone,
        backend,
        threads,
    )
    return ImageClassifier(config=config, classes=classes, backend=backend, logits=logits)
