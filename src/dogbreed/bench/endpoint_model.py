"""The endpoint benchmark's model: a seeded ResNet50 with a nearest-centroid head over the corpus, its
FP32 PyTorch reference answers, its model-only throughput ceiling and its int8-quantized variant."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dogbreed.bench.endpoint_corpus import SEED, build_corpus

NUM_CLASSES = 133
IMAGE_SIZE = 224
CALIBRATION_IMAGES = 12
HEAD_MARGIN = 4.0  # median top-1/top-2 logit margin of the benchmark head (e^4 = 55x)


def reference_inputs(corpus: Sequence[bytes]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The FP32 reference preprocessing: full-size decode + the training evaluation transform."""
    from dogbreed_job import transforms
    from PIL import Image

    return np.stack(
        [transforms.preprocess(Image.open(io.BytesIO(data)).convert("RGB"), IMAGE_SIZE) for data in corpus]
    )


def build_bench_model_dir(model_dir: Path, corpus: Sequence[bytes]) -> dict[str, Any]:
    """Seeded ResNet50 with a nearest-centroid head over the corpus, exported with `export_model_dir`
    (weights, verified ONNX, code/). Returns facts about the head's margins for the report.

    Each corpus image gets its own class: that class's weight row is the image's centred, normalized
    feature vector, so its top-1 is decided with a real margin, like a trained model's confident
    prediction; the other classes get small random rows. Logits are scaled to a median top-1/top-2
    margin of HEAD_MARGIN."""
    import torch
    from dataset_check.breeds import DOGIMAGES_CLASSES, breed_name
    from dogbreed_job import artifacts
    from dogbreed_job.export import export_model_dir
    from dogbreed_job.model import build_model

    torch.manual_seed(SEED)
    model = build_model("resnet50", NUM_CLASSES, pretrained=False).eval()
    inputs = torch.from_numpy(reference_inputs(corpus))
    backbone = torch.nn.Sequential(*list(model.children())[:-1])
    with torch.inference_mode():
        features = backbone(inputs).flatten(1).double()
    mean = features.mean(0)
    centred = features - mean
    generator = torch.Generator().manual_seed(SEED)
    dims = features.shape[1]
    weight = torch.randn(NUM_CLASSES, dims, generator=generator, dtype=torch.float64) / dims**0.5
    assigned = torch.randperm(NUM_CLASSES, generator=generator)[: len(corpus)]
    weight[assigned] = centred / centred.norm(dim=1, keepdim=True)
    logits = centred @ weight.T
    top2 = logits.topk(2, dim=1).values
    scale = HEAD_MARGIN / float((top2[:, 0] - top2[:, 1]).median())
    head_layer = model.fc
    assert isinstance(head_layer, torch.nn.Linear)
    with torch.no_grad():
        head_layer.weight.copy_((weight * scale).float())
        head_layer.bias.copy_((-(mean @ weight.T) * scale).float())
        probabilities = torch.softmax(model(inputs).double(), dim=1)
    top = probabilities.topk(2, dim=1).values
    classes = [breed_name(name) for name in DOGIMAGES_CLASSES]
    config = artifacts.ModelConfig(
        backbone="resnet50",
        num_classes=NUM_CLASSES,
        image_size=IMAGE_SIZE,
        model_version="bench-resnet50-seed0",
    )
    export_model_dir(model, model_dir=model_dir, classes=classes, config=config)
    return {
        "head": "nearest-centroid over the corpus features (one class per corpus image)",
        "distinct_top1_classes": int(probabilities.argmax(1).unique().numel()),
        "median_top1_probability": round(float(top[:, 0].median()), 4),
        "min_top1_probability": round(float(top[:, 0].min()), 4),
        "median_top1_top2_logit_margin": HEAD_MARGIN,
    }


def reference_top1(model_dir: Path, corpus: Sequence[bytes]) -> list[int]:
    import torch
    from dogbreed_job import artifacts
    from dogbreed_job.model import build_model, load_weights

    model = build_model("resnet50", NUM_CLASSES, pretrained=False)
    load_weights(model, torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True))
    with torch.inference_mode():
        logits = model.eval()(torch.from_numpy(reference_inputs(corpus)))
    return [int(i) for i in logits.argmax(1)]


def compute_ceiling(model_dir: Path, seconds: float, int8_file: Path | None = None) -> dict[str, float]:
    """Model-only throughput on this CPU (no decode, no HTTP): ONNX Runtime fp32 (and int8) at batch 4
    and PyTorch eager fp32 at batch 1, with all cores."""
    import onnxruntime as ort
    import torch
    from dogbreed_job import artifacts
    from dogbreed_job.model import build_model, load_weights

    batch = np.random.default_rng(SEED).standard_normal((4, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)

    def session(path: Path) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def rate(run: Callable[[], object], images: int = len(batch)) -> float:
        run()
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            run()
            done += images
        return done / (time.perf_counter() - start)

    model = build_model("resnet50", NUM_CLASSES, pretrained=False)
    load_weights(
        model, torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    ).eval()
    rates: dict[str, float] = {}
    with torch.inference_mode():
        # Batch 1, as the baseline runs it (PyTorch eager was slower per image at batch 4 here).
        rates["pytorch_fp32_images_per_s"] = rate(lambda: model(torch.from_numpy(batch[:1])), images=1)
    fp32 = session(model_dir / artifacts.ONNX_FILE)
    rates["onnx_fp32_images_per_s"] = rate(lambda: fp32.run(None, {"input": batch}))
    if int8_file is not None:
        int8 = session(int8_file)
        rates["onnx_int8_images_per_s"] = rate(lambda: int8.run(None, {"input": batch}))
    return rates


def prepare_int8(model_dir: Path, log: Callable[[str], None]) -> Path:
    from dogbreed.serving.quantize import INT8_ONNX_FILE, quantize_model_dir

    target = model_dir / INT8_ONNX_FILE
    if not target.is_file():
        log("int8: calibrating on a separate corpus (seed 1) and quantizing ...")
        calibration = build_corpus(CALIBRATION_IMAGES, seed=SEED + 1)
        quantize_model_dir(model_dir, calibration)
    return target
