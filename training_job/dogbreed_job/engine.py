"""One training epoch and one evaluation pass, with exact per-sample metrics under DDP.

Every process accumulates sums (loss x samples, correct, top-5 hits, sample count, and for
evaluation the confusion matrix) and the sums are all-reduced, so loss is averaged per sample and
accuracy is a fraction of samples across the whole split, whatever the batch and world sizes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dogbreed_job.distributed import all_reduce_sum

TOP_K = 5


@dataclass(frozen=True)
class TrainStats:
    loss: float
    acc: float
    samples: int


@dataclass(frozen=True)
class EvalResult:
    loss: float
    acc: float
    top5: float
    samples: int
    confusion: list[list[int]] = field(repr=False)

    def per_class_acc(self, classes: list[str]) -> dict[str, float]:
        accuracies = {}
        for index, name in enumerate(classes):
            row = self.confusion[index]
            total = sum(row)
            accuracies[name] = row[index] / total if total else 0.0
        return accuracies


def native_bf16() -> bool:
    """Whether the GPU computes in bfloat16 natively (compute capability 8.0 and up). By default
    `torch.cuda.is_bf16_supported()` also counts emulated support, so it is True on the T4 of the
    default ml.g4dn instances, where cuDNN has no bfloat16 convolutions: those train in float16 with
    a GradScaler instead."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision on GPU only: bfloat16 where it is native, float16 elsewhere."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if native_bf16() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    *,
    scaler: torch.amp.GradScaler | None = None,
    amp: bool = False,
    channels_last: bool = False,
    gradient_weight: float = 1.0,
) -> TrainStats:
    """One pass over `loader`. The loss is multiplied by `gradient_weight` before backward (see
    `batch_plan.BatchPlan.gradient_weight`); the reported loss is the plain per-sample mean."""
    model.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss x n, correct, n
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(images)
            loss = criterion(logits, targets)
        weighted = loss * gradient_weight if gradient_weight != 1.0 else loss
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(weighted).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            weighted.backward()
            optimizer.step()
        batch = targets.shape[0]
        sums[0] += loss.detach().double() * batch
        sums[1] += (logits.detach().argmax(dim=1) == targets).sum()
        sums[2] += batch
    all_reduce_sum(sums)
    total = max(sums[2].item(), 1.0)
    return TrainStats(loss=sums[0].item() / total, acc=sums[1].item() / total, samples=int(sums[2].item()))


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    *,
    num_classes: int,
    amp: bool = False,
    channels_last: bool = False,
) -> EvalResult:
    """Cross-entropy (no label smoothing), top-1 and top-5 accuracy and the confusion matrix."""
    model.eval()
    top_k = min(TOP_K, num_classes)
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss x n, correct, top-k hits, n
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    for images, targets in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        predictions = logits.argmax(dim=1)
        top = logits.topk(top_k, dim=1).indices
        sums[0] += nn.functional.cross_entropy(logits, targets, reduction="sum").double()
        sums[1] += (predictions == targets).sum()
        sums[2] += (top == targets.unsqueeze(1)).any(dim=1).sum()
        sums[3] += targets.shape[0]
        confusion += torch.bincount(
            targets * num_classes + predictions, minlength=num_classes * num_classes
        ).reshape(num_classes, num_classes)
    all_reduce_sum(sums)
    all_reduce_sum(confusion)
    total = max(sums[3].item(), 1.0)
    return EvalResult(
        loss=sums[0].item() / total,
        acc=sums[1].item() / total,
        top5=sums[2].item() / total,
        samples=int(sums[3].item()),
        confusion=confusion.cpu().tolist(),
    )
