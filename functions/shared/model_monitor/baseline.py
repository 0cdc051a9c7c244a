"""The training baseline (`baseline.json` in the model directory, beside `metrics.json`): what the
monitor compares production traffic against.

    {"format_version": 1, "model_version": "...", "classes": [...],
     "class_priors": [...],                 # fraction of the training split per class index
     "confidence_edges": [0.0, 0.1, ..., 1.0],
     "confidence_histogram": [...],         # fraction of validation images per top-1 confidence bin
     "confidence_count": 240,
     "image_stats": {"width": [...], "height": [...], "aspect": [...], "brightness": [...]},
     "image_count": 1200}                   # training images; image_stats holds a sample of them

The image-statistics sample is at most `IMAGE_SAMPLE_LIMIT` values per feature, evenly spaced over
the training split, enough for a two-sample test and small enough for a Lambda to read each hour.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from model_monitor.image_stats import FEATURES
from model_monitor.statistics import histogram, normalise

BASELINE_FILE: Final = "baseline.json"
FORMAT_VERSION: Final = 1
CONFIDENCE_EDGES: Final[tuple[float, ...]] = tuple(round(i / 10, 1) for i in range(11))
IMAGE_SAMPLE_LIMIT: Final = 500


class BaselineError(ValueError):
    """A baseline document that does not follow the schema above."""


@dataclass(frozen=True)
class Baseline:
    model_version: str
    classes: list[str]
    class_priors: list[float]
    confidence_edges: list[float]
    confidence_histogram: list[float]
    confidence_count: int
    image_stats: dict[str, list[float]]
    image_count: int
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Baseline:
        try:
            raw = json.loads(text)
            baseline = cls(
                model_version=str(raw["model_version"]),
                classes=[str(name) for name in raw["classes"]],
                class_priors=[float(v) for v in raw["class_priors"]],
                confidence_edges=[float(v) for v in raw["confidence_edges"]],
                confidence_histogram=[float(v) for v in raw["confidence_histogram"]],
                confidence_count=int(raw["confidence_count"]),
                image_stats={name: [float(v) for v in raw["image_stats"][name]] for name in FEATURES},
                image_count=int(raw["image_count"]),
                format_version=int(raw.get("format_version", FORMAT_VERSION)),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise BaselineError(f"{BASELINE_FILE} is not a baseline: {error!r}") from error
        if baseline.format_version != FORMAT_VERSION:
            raise BaselineError(f"{BASELINE_FILE} format {baseline.format_version} is not {FORMAT_VERSION}")
        if len(baseline.class_priors) != len(baseline.classes):
            raise BaselineError(f"{BASELINE_FILE}: one class prior per class is required")
        if len(baseline.confidence_histogram) != len(baseline.confidence_edges) - 1:
            raise BaselineError(f"{BASELINE_FILE}: one confidence fraction per bin is required")
        return baseline


def evenly_spaced(items: Sequence[Any], limit: int) -> list[Any]:
    """At most `limit` items spread evenly over `items` (all of them when there are fewer)."""
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def build_baseline(
    *,
    model_version: str,
    classes: Sequence[str],
    train_targets: Iterable[int],
    confidence_counts: Sequence[int],
    image_stats: Sequence[Mapping[str, float]],
    image_count: int,
) -> Baseline:
    """The baseline from the training split's class indices, the validation split's counts per
    `CONFIDENCE_EDGES` bin and the statistics of (a sample of) the training images."""
    counts = [0] * len(classes)
    for target in train_targets:
        counts[target] += 1
    if len(confidence_counts) != len(CONFIDENCE_EDGES) - 1:
        raise ValueError("one confidence count per CONFIDENCE_EDGES bin is required")
    return Baseline(
        model_version=model_version,
        classes=list(classes),
        class_priors=normalise(counts),
        confidence_edges=list(CONFIDENCE_EDGES),
        confidence_histogram=normalise(confidence_counts),
        confidence_count=int(sum(confidence_counts)),
        image_stats={name: sorted(float(stats[name]) for stats in image_stats) for name in FEATURES},
        image_count=image_count,
    )


def confidence_counts(confidences: Iterable[float]) -> list[int]:
    """Counts of top-1 confidences per `CONFIDENCE_EDGES` bin."""
    return histogram(list(confidences), CONFIDENCE_EDGES)
