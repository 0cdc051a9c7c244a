"""Captured traffic for the monitor's tests: the tiny model's colour images (in distribution) and
inverted, larger ones it never saw (off distribution), as SageMaker capture records of the endpoint's
answers, and baselines built from the in-distribution kind."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
from model_monitor.baseline import Baseline, build_baseline, confidence_counts
from model_monitor.capture import CaptureRecord, payload
from model_monitor.image_stats import image_stats
from PIL import Image

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_image, solid_color_jpeg

VERSION = "model-v1"


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


def in_distribution(seed: int) -> tuple[bytes, int, float]:
    """(request image, predicted class, top-1 confidence) as the training data would give them."""
    label = seed % len(TINY_CLASSES)
    return solid_color_jpeg(label, seed=seed), label, 0.9 + 0.05 * ((seed * 7) % 3) / 2


def off_distribution(seed: int) -> tuple[bytes, int, float]:
    """Inverted colours at another size: the model sees what it was never trained on and says class 0
    with little confidence."""
    image = 255 - solid_color_image(seed % len(TINY_CLASSES), 96, seed)
    return jpeg(image), 0, 0.35 + 0.1 * (seed % 3)


def capture(
    image: bytes, label: int, confidence: float, *, version: str = VERSION, when: datetime | None = None
) -> CaptureRecord:
    others = (1 - confidence) / 2
    predictions = [{"breed": TINY_CLASSES[label], "class_index": label, "probability": confidence}] + [
        {"breed": TINY_CLASSES[i], "class_index": i, "probability": others}
        for i in range(len(TINY_CLASSES))
        if i != label
    ]
    body = json.dumps({"model_version": version, "predictions": predictions}).encode()
    return CaptureRecord(
        event_id=f"e{label}-{confidence}",
        inference_time=when or datetime.now(UTC),
        endpoint_input=payload("image/jpeg", "INPUT", image, as_text=False),
        endpoint_output=payload("application/json", "OUTPUT", body, as_text=True),
    )


def tiny_baseline(version: str = VERSION) -> Baseline:
    training = [in_distribution(seed) for seed in range(300, 390)]
    return build_baseline(
        model_version=version,
        classes=list(TINY_CLASSES),
        train_targets=[label for _, label, _ in training],
        confidence_counts=confidence_counts([confidence for _, _, confidence in training]),
        image_stats=[image_stats(image) for image, _, _ in training],
        image_count=len(training),
    )
