"""Datasets and loaders for the dogImages layout: `<data_dir>/{train,valid,test}/NNN.Breed_Name/*.jpg`.

Class indices come from the sorted class folders of `train/` (so `001.Affenpinscher` is index 0);
`valid/` and `test/` must not hold classes that `train/` lacks. Training batches come from a
`DistributedSampler` (one shard per process, reshuffled per epoch with `set_epoch`); evaluation
uses `ShardedEvalSampler`, which splits a split across processes with no padding, so summing the
per-process counts gives exact per-sample metrics.
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
from torch.utils.data.distributed import DistributedSampler

from dogbreed_job import artifacts, transforms
from dogbreed_job.distributed import DistributedEnv

logger = logging.getLogger(__name__)


class DatasetLayoutError(ValueError):
    """The data directory does not have the dogImages layout."""


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


@dataclass(frozen=True)
class Loaders:
    train: DataLoader[Any]
    train_sampler: DistributedSampler[Any] | None
    # Shuffles the single-process training order; reseeded per epoch so a resumed run repeats it.
    train_generator: torch.Generator
    valid: DataLoader[Any]
    test: DataLoader[Any]


def build_loaders(
    splits: DataSplits, *, batch_size: int, workers: int, env: DistributedEnv, seed: int, pin_memory: bool
) -> Loaders:
    common: dict[str, Any] = {
        "num_workers": workers,
        "pin_memory": pin_memory,
        "persistent_workers": workers > 0,
    }
    train_sampler: DistributedSampler[Any] | None = None
    if env.enabled:
        train_sampler = DistributedSampler(
            splits.train, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=seed
        )
        shard_size = len(train_sampler)
    else:
        shard_size = len(splits.train)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(
        splits.train,
        batch_size=batch_size,
        shuffle=train_sampler is None,
        sampler=train_sampler,
        generator=generator,
        # BatchNorm cannot train on a batch of one; drop the ragged tail when there is a full batch.
        drop_last=shard_size > batch_size,
        **common,
    )
    valid = DataLoader(
        splits.valid, batch_size=batch_size, sampler=ShardedEvalSampler(len(splits.valid), env), **common
    )
    # The test split is read once: no workers kept alive for it.
    test = DataLoader(
        splits.test,
        batch_size=batch_size,
        sampler=ShardedEvalSampler(len(splits.test), env),
        num_workers=workers,
        pin_memory=pin_memory,
    )
    return Loaders(
        train=train, train_sampler=train_sampler, train_generator=generator, valid=valid, test=test
    )


def train_shard_indices(loaders: Loaders) -> list[int]:
    """The dataset indices this process trains on in the current epoch (after `set_epoch`)."""
    if loaders.train_sampler is not None:
        return list(iter(loaders.train_sampler))
    return list(range(len(loaders.train.dataset)))  # type: ignore[arg-type]
