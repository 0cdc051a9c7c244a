"""What `--batch-size` and `--learning-rate` mean at any world size: the one rule, in one place.

Rule `fixed-global-batch`: `--batch-size` is the GLOBAL batch of one optimizer step (what a
one-instance tuning trial used), and `--learning-rate` is used as given. Each process takes a share
of every global batch (`global // world_size`, the remainder going one each to the first ranks, so
the shares sum to the global batch) and weights its loss by `share * world_size / global` so that
DDP's average of the per-process gradients equals the gradient of the mean loss over the global
batch. The number of optimizer steps per epoch and the learning rate per step are therefore the
same on one process and on N, and so is the optimisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RULE = "fixed-global-batch"


class BatchPlanError(ValueError):
    """The global batch (or the training split) cannot be shared across the processes."""


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` integers that differ by at most one, the larger ones first."""
    base, remainder = divmod(total, parts)
    return [base + 1 if index < remainder else base for index in range(parts)]


@dataclass(frozen=True)
class BatchPlan:
    """How one epoch of training is cut into optimizer steps and shared across processes."""

    world_size: int
    global_batch: int  # --batch-size as given
    train_size: int
    learning_rate: float

    @property
    def step_batch(self) -> int:
        """Samples per optimizer step: the global batch, or the whole split when it is smaller."""
        return min(self.global_batch, self.train_size)

    @property
    def drop_last(self) -> bool:
        """A ragged final batch is dropped when there is a full one (BatchNorm cannot train on
        a batch of one); a split no bigger than the batch is one step."""
        return self.train_size > self.global_batch

    @property
    def steps_per_epoch(self) -> int:
        return self.train_size // self.step_batch

    @property
    def per_rank_batches(self) -> list[int]:
        return split_evenly(self.step_batch, self.world_size)

    def share_bounds(self, rank: int, batch_length: int | None = None) -> tuple[int, int]:
        """`[start, stop)` of `rank`'s share within a global batch (of `batch_length` samples,
        default a full one)."""
        shares = split_evenly(self.step_batch if batch_length is None else batch_length, self.world_size)
        start = sum(shares[:rank])
        return start, start + shares[rank]

    def gradient_weight(self, rank: int) -> float:
        """Factor on `rank`'s mean loss so that DDP's gradient average is the global-batch mean."""
        return self.per_rank_batches[rank] * self.world_size / self.step_batch

    @property
    def eval_batch(self) -> int:
        """Per-process evaluation batch: the largest training share (what fits on one device)."""
        return self.per_rank_batches[0]

    def as_dict(self) -> dict[str, Any]:
        """What metrics.json records under "distributed"."""
        return {
            "rule": RULE,
            "world_size": self.world_size,
            "global_batch": self.global_batch,
            "per_rank_batches": self.per_rank_batches,
            "learning_rate": self.learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
        }

    def log_line(self) -> str:
        """One `key=value` line for the job log (no key is one of the HPO metric names)."""
        return (
            f"batch_rule={RULE} world_size={self.world_size} global_batch={self.global_batch} "
            f"per_rank_batch={','.join(map(str, self.per_rank_batches))} lr={self.learning_rate:g} "
            f"steps_per_epoch={self.steps_per_epoch}"
        )


def check_global_batch(global_batch: int, world_size: int) -> None:
    """Every process needs at least one sample of every global batch (checked before the processes
    meet, so a bad setting fails at once on every host)."""
    if global_batch < world_size:
        raise BatchPlanError(
            f"--batch-size {global_batch} is the global batch shared by {world_size} processes; "
            f"it must be at least {world_size} (one sample per process)"
        )


def plan_batches(*, global_batch: int, world_size: int, train_size: int, learning_rate: float) -> BatchPlan:
    """The plan for this job, or a `BatchPlanError` that says which number to change."""
    check_global_batch(global_batch, world_size)
    if train_size < world_size:
        raise BatchPlanError(
            f"the training split holds {train_size} images, fewer than the {world_size} processes"
        )
    return BatchPlan(
        world_size=world_size, global_batch=global_batch, train_size=train_size, learning_rate=learning_rate
    )
