"""The monitoring baseline of a trained model (`baseline.json` beside `metrics.json`; the schema and
the statistics are `model_monitor`'s, shared with the monitor function):

- class priors: the training split's share of each class;
- the top-1 confidence histogram of the final network on the validation split (every rank's share
  counted, the counts summed across processes);
- image statistics of the training images (evenly spaced sample), read from the files as a request
  would send them, before any resize.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from model_monitor.baseline import (
    BASELINE_FILE,
    IMAGE_SAMPLE_LIMIT,
    Baseline,
    build_baseline,
    confidence_counts,
    evenly_spaced,
)
from model_monitor.image_stats import ImageStatsError, image_stats
from torch import nn

from dogbreed_job.data import DataSplits
from dogbreed_job.distributed import all_reduce_sum
from dogbreed_job.engine import autocast


@torch.inference_mode()
def validation_confidence_counts(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> list[int]:
    """Counts per confidence bin of the top-1 softmax probability over the whole split."""
    model.eval()
    confidences: list[float] = []
    for images, _ in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(images)
        confidences.extend(logits.float().softmax(dim=1).max(dim=1).values.cpu().tolist())
    counts = torch.tensor(confidence_counts(confidences), dtype=torch.int64, device=device)
    all_reduce_sum(counts)
    return [int(value) for value in counts.cpu().tolist()]


def training_image_stats(paths: list[Path]) -> list[dict[str, float]]:
    """Statistics of an evenly spaced sample of the training images (unreadable files are skipped:
    the dataset check has already refused datasets with broken images)."""
    stats = []
    for path in evenly_spaced(paths, IMAGE_SAMPLE_LIMIT):
        try:
            stats.append(image_stats(path.read_bytes()))
        except ImageStatsError:
            continue
    return stats


def write_baseline(
    model_dir: Path, *, splits: DataSplits, model_version: str, confidence_counts_: list[int]
) -> Baseline:
    train_samples = splits.train.samples
    baseline = build_baseline(
        model_version=model_version,
        classes=splits.classes,
        train_targets=(label for _, label in train_samples),
        confidence_counts=confidence_counts_,
        image_stats=training_image_stats([path for path, _ in train_samples]),
        image_count=len(train_samples),
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / BASELINE_FILE).write_text(baseline.to_json())
    return baseline
