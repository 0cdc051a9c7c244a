"""What --batch-size and --learning-rate mean at any world size: the global batch of one optimizer
step, shared across processes, with each global batch holding the samples one process would train
on."""

from __future__ import annotations

import pytest
import torch
from dogbreed_job import data, metrics
from dogbreed_job.batch_plan import RULE, BatchPlan, BatchPlanError, plan_batches
from torch.utils.data import Dataset


def _plan(global_batch: int, world_size: int, train_size: int = 100) -> BatchPlan:
    return plan_batches(
        global_batch=global_batch, world_size=world_size, train_size=train_size, learning_rate=0.00121
    )


@pytest.mark.parametrize(
    ("global_batch", "world_size", "shares"),
    [(16, 1, [16]), (16, 2, [8, 8]), (10, 3, [4, 3, 3]), (7, 4, [2, 2, 2, 1]), (4, 4, [1, 1, 1, 1])],
)
def test_the_global_batch_is_shared_with_the_remainder_on_the_first_ranks(
    global_batch: int, world_size: int, shares: list[int]
) -> None:
    plan = _plan(global_batch, world_size)

    assert plan.per_rank_batches == shares
    assert [plan.share_bounds(rank) for rank in range(world_size)] == [
        (sum(shares[:rank]), sum(shares[: rank + 1])) for rank in range(world_size)
    ]


@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_steps_per_epoch_and_learning_rate_do_not_depend_on_the_world_size(world_size: int) -> None:
    plan = _plan(16, world_size, train_size=100)

    assert plan.steps_per_epoch == 6  # 100 // 16; the ragged tail of 4 is dropped
    assert plan.learning_rate == 0.00121


def test_a_split_no_bigger_than_the_batch_is_one_step_of_the_whole_split() -> None:
    plan = _plan(32, 2, train_size=18)

    assert (plan.steps_per_epoch, plan.per_rank_batches, plan.drop_last) == (1, [9, 9], False)


@pytest.mark.parametrize(("global_batch", "world_size"), [(16, 2), (10, 3), (7, 4)])
def test_weighted_per_rank_mean_gradients_average_to_the_global_batch_mean(
    global_batch: int, world_size: int
) -> None:
    # Given per-sample gradients of one global batch
    plan = _plan(global_batch, world_size)
    per_sample = torch.randn(global_batch, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    # When each rank weights the mean over its share and DDP averages the ranks
    ranks = []
    for rank in range(world_size):
        start, stop = plan.share_bounds(rank)
        ranks.append(plan.gradient_weight(rank) * per_sample[start:stop].mean(dim=0))
    ddp_average = torch.stack(ranks).mean(dim=0)

    # Then the update is the single-process one: the mean over the global batch
    torch.testing.assert_close(ddp_average, per_sample.mean(dim=0))


def test_a_global_batch_smaller_than_the_world_size_is_refused() -> None:
    with pytest.raises(BatchPlanError, match=r"--batch-size 3 is the global batch shared by 4 processes"):
        _plan(3, 4)


def test_a_training_split_smaller_than_the_world_size_is_refused() -> None:
    with pytest.raises(BatchPlanError, match="holds 3 images, fewer than the 4 processes"):
        _plan(8, 4, train_size=3)


def test_the_plan_is_recorded_and_logged_without_matching_a_metric_regex() -> None:
    plan = _plan(16, 2)

    assert plan.as_dict() == {
        "rule": RULE,
        "world_size": 2,
        "global_batch": 16,
        "per_rank_batches": [8, 8],
        "learning_rate": 0.00121,
        "steps_per_epoch": 6,
    }
    line = plan.log_line()
    assert "world_size=2 global_batch=16 per_rank_batch=8,8 lr=0.00121 steps_per_epoch=6" in line
    assert metrics.parse_metrics(line) == {}


def _samplers(
    global_batch: int, world_size: int, train_size: int, epoch: int
) -> list[data.GlobalBatchSampler]:
    plan = _plan(global_batch, world_size, train_size)
    samplers = [data.GlobalBatchSampler(train_size, plan, rank=rank, seed=7) for rank in range(world_size)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return samplers


@pytest.mark.parametrize(("global_batch", "world_size", "train_size"), [(16, 2, 100), (10, 3, 47), (7, 4, 7)])
def test_the_ranks_shares_of_step_k_are_the_single_process_batch_k(
    global_batch: int, world_size: int, train_size: int
) -> None:
    (single,) = _samplers(global_batch, 1, train_size, epoch=3)
    ranks = _samplers(global_batch, world_size, train_size, epoch=3)

    single_steps = [[index for index, _ in batch] for batch in single]
    rank_steps = [[[index for index, _ in batch] for batch in sampler] for sampler in ranks]

    assert len(single_steps) == train_size // global_batch
    assert all(len(steps) == len(single_steps) for steps in rank_steps)
    for step, batch in enumerate(single_steps):
        assert [index for steps in rank_steps for index in steps[step]] == batch
    # and every sample carries the same augmentation seed on whichever rank reads it
    single_seeds = dict(pair for batch in single for pair in batch)
    assert all(single_seeds[index] == seed for s in ranks for batch in s for index, seed in batch)


def test_the_shares_partition_the_epoch_and_each_epoch_reshuffles() -> None:
    epoch_1 = _samplers(16, 2, 100, epoch=1)
    epoch_2 = _samplers(16, 2, 100, epoch=2)

    assert sorted(epoch_1[0].epoch_share() + epoch_1[1].epoch_share()) == list(range(100))  # tail included
    assert epoch_1[0].local_batches() != epoch_2[0].local_batches()


class _RandomImages(Dataset[tuple[torch.Tensor, int]]):
    """Stands in for an augmented image dataset: every item is drawn from torch's generator."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.rand(3), index


def test_a_samples_augmentation_depends_on_its_seed_only() -> None:
    dataset = data.SeededAugmentation(_RandomImages())

    torch.manual_seed(1)
    first, _ = dataset[(2, 1234)]
    state = torch.get_rng_state()
    torch.manual_seed(99)
    dataset[(0, 5)]
    again, _ = dataset[(2, 1234)]

    torch.testing.assert_close(first, again)
    assert not torch.equal(first, dataset[(2, 1235)][0])
    torch.manual_seed(1)
    dataset[(2, 1234)]
    assert torch.equal(torch.get_rng_state(), state), "the caller's generator is left as it was"
