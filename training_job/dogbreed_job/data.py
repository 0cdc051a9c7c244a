"""Datasets and loaders for the dogImages layout: `<data_dir>/{train,valid,test}/NNN.Breed_Name/*.jpg`.

Class indices come from the sorted class folders of `train/` (so `001.Affenpinscher` is index 0);
`valid/` and `test/` must not hold classes that `train/` lacks. Training batches come from
`GlobalBatchSampler`: every process draws the same shuffled order for the epoch, cuts it into the
global batches a single process would train on, and takes its share of each (`batch_plan`), so the
samples of optimizer step k do not depend on the world size; augmentation is seeded per sample
(`SeededAugmentation`), so neither do the augmented images. Evaluation uses `ShardedEvalSampler`,
which splits a split across processes with no padding, so summing the per-process counts gives
exact per-sample metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from dataset_check.layout import SPLITS, has_image_suffix
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from dogbreed_job import artifacts, transforms
from dogbreed_job.batch_plan import BatchPlan
from dogbreed_job.distributed import DistributedEnv

logger = logging.getLogger(__name__)


class DatasetLayoutError(ValueError):
    """The data directory does not have the dogImages layout."""


class DatasetCheckFailed(SystemExit):
    """The dataset is not fit for training; the message is the check's report."""


def check_dataset(data_dir: Path) -> None:
    """Fail fast, before paid compute, with the dataset check's readable report."""
    try:
        from dataset_check.checker import check_entries
        from dataset_check.entries import iter_directory
    except ImportError:
        logger.info("dataset check is not part of this source_dir; skipping it")
        return
    report = check_entries(iter_directory(data_dir))
    if not report.ok:
        raise DatasetCheckFailed(f"dataset check failed for {data_dir}:\n{report.to_text()}")
    logger.info("dataset check passed for %s", data_dir)


class ImageListDataset(Dataset[tuple[Any, int]]):
    """(image path, class index) pairs, decoded with Pillow and transformed on access."""

    def __init__(self, samples: Sequence[tuple[Path, int]], transform: Callable[[Image.Image], Any]) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]


@dataclass(frozen=True)
class DataSplits:
    class_dirs: list[str]
    train: ImageListDataset
    valid: ImageListDataset
    test: ImageListDataset

    @property
    def classes(self) -> list[str]:
        """Breed names, position = class index (what classes.json holds)."""
        return [artifacts.breed_name(name) for name in self.class_dirs]


def find_class_dirs(split_dir: Path) -> list[str]:
    if not split_dir.is_dir():
        raise DatasetLayoutError(f"{split_dir} is missing: expected train/, valid/ and test/ folders")
    return sorted(
        entry.name for entry in split_dir.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )


def list_samples(split_dir: Path, class_dirs: Sequence[str]) -> list[tuple[Path, int]]:
    index_of = {name: index for index, name in enumerate(class_dirs)}
    unknown = sorted(set(find_class_dirs(split_dir)) - set(index_of))
    if unknown:
        raise DatasetLayoutError(f"{split_dir} has classes that train/ lacks: {', '.join(unknown[:5])}")
    samples: list[tuple[Path, int]] = []
    for name in class_dirs:
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.iterdir()):
            if path.is_file() and has_image_suffix(path.name):
                samples.append((path, index_of[name]))
    return samples


def load_splits(data_dir: Path, image_size: int) -> DataSplits:
    class_dirs = find_class_dirs(data_dir / "train")
    if len(class_dirs) < 2:
        raise DatasetLayoutError(
            f"{data_dir / 'train'} needs at least 2 class folders, found {len(class_dirs)}"
        )
    train_tf = transforms.train_transform(image_size)
    eval_tf = transforms.eval_transform(image_size)
    datasets = {}
    for split in SPLITS:
        samples = list_samples(data_dir / split, class_dirs)
        if not samples:
            raise DatasetLayoutError(f"{data_dir / split} holds no images")
        datasets[split] = ImageListDataset(samples, train_tf if split == "train" else eval_tf)
    return DataSplits(
        class_dirs=class_dirs, train=datasets["train"], valid=datasets["valid"], test=datasets["test"]
    )


class ShardedEvalSampler(Sampler[int]):
    """Indices `rank, rank + world_size, ...`: disjoint shards that together cover the split once."""

    def __init__(self, length: int, env: DistributedEnv) -> None:
        self.length = length
        self.rank = env.rank
        self.world_size = env.world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


# What the training sampler yields per sample: (dataset index, augmentation seed).
SeededIndex = tuple[int, int]
AUGMENTATION_SEED_BOUND = 2**31 - 1


class SeededAugmentation(Dataset[tuple[Any, int]]):
    """`dataset[index]` with torch's random generator seeded from the key, so a sample's random
    crop, flip and colour jitter depend on (seed, epoch, index) only, not on which process or
    loader worker reads it. The caller's generator state is left as it was."""

    def __init__(self, dataset: Dataset[tuple[Any, int]]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: SeededIndex) -> tuple[Any, int]:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class GlobalBatchSampler(Sampler[list[SeededIndex]]):
    """This process's share of every global batch of the epoch (a batch sampler).

    All processes draw the same permutation and augmentation seeds from (seed, epoch), cut the
    permutation into `plan.step_batch`-sized global batches (dropping a ragged tail as a single
    process would) and keep slice `plan.share_bounds(rank)` of each. Call `set_epoch` before each
    epoch, as with `DistributedSampler`.
    """

    def __init__(self, length: int, plan: BatchPlan, *, rank: int, seed: int) -> None:
        self.length = length
        self.plan = plan
        self.rank = rank
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _draw(self) -> tuple[list[int], list[int]]:
        """The epoch's sample order and the augmentation seed of every dataset index."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        seeds = torch.randint(AUGMENTATION_SEED_BOUND, (self.length,), generator=generator).tolist()
        return order, seeds

    def global_batches(self) -> list[list[int]]:
        """Every global batch of the epoch, tail included (what a single process would cut)."""
        order, _ = self._draw()
        size = self.plan.step_batch
        return [order[start : start + size] for start in range(0, self.length, size)]

    def trained_batches(self) -> list[list[int]]:
        """The global batches that become optimizer steps."""
        batches = self.global_batches()
        return batches[: self.plan.steps_per_epoch] if self.plan.drop_last else batches

    def epoch_share(self) -> list[int]:
        """This process's slice of every global batch of the epoch, the untrained tail included."""
        share: list[int] = []
        for batch in self.global_batches():
            start, stop = self.plan.share_bounds(self.rank, len(batch))
            share += batch[start:stop]
        return share

    def local_batches(self) -> list[list[int]]:
        """The dataset indices this process trains on, one list per optimizer step."""
        start, stop = self.plan.share_bounds(self.rank)
        return [batch[start:stop] for batch in self.trained_batches()]

    def __iter__(self) -> Iterator[list[SeededIndex]]:
        _, seeds = self._draw()
        for batch in self.local_batches():
            yield [(index, seeds[index]) for index in batch]

    def __len__(self) -> int:
        return self.plan.steps_per_epoch


@dataclass(frozen=True)
class Loaders:
    train: DataLoader[Any]
    # Reshuffles with set_epoch; the same order on every process (see GlobalBatchSampler).
    train_sampler: GlobalBatchSampler
    valid: DataLoader[Any]
    test: DataLoader[Any]


def build_loaders(
    splits: DataSplits, *, plan: BatchPlan, workers: int, env: DistributedEnv, seed: int, pin_memory: bool
) -> Loaders:
    common: dict[str, Any] = {
        "num_workers": workers,
        "pin_memory": pin_memory,
        "persistent_workers": workers > 0,
    }
    train_sampler = GlobalBatchSampler(len(splits.train), plan, rank=env.rank, seed=seed)
    train = DataLoader(SeededAugmentation(splits.train), batch_sampler=train_sampler, **common)
    valid = DataLoader(
        splits.valid, batch_size=plan.eval_batch, sampler=ShardedEvalSampler(len(splits.valid), env), **common
    )
    # The test split is read once: no workers kept alive for it.
    test = DataLoader(
        splits.test,
        batch_size=plan.eval_batch,
        sampler=ShardedEvalSampler(len(splits.test), env),
        num_workers=workers,
        pin_memory=pin_memory,
    )
    return Loaders(train=train, train_sampler=train_sampler, valid=valid, test=test)
