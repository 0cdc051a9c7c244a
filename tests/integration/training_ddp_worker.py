"""One process of a tiny training run assembled from the training job's own pieces (batch plan,
global-batch sampler, per-sample augmentation seeds, global-batch BatchNorm, the engine's epoch),
so that a run on N processes can be compared number for number with a run on one.

    python training_ddp_worker.py OUT_FILE    # RANK/WORLD_SIZE/MASTER_* as torchrun sets them

Rank 0 writes the final state_dict (weights and BatchNorm running statistics) to OUT_FILE.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from dogbreed_job import batchnorm, data, distributed, engine
from dogbreed_job.batch_plan import plan_batches
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

TRAIN_SIZE = 30
CLASSES = 3
# 7 across 2 processes: unequal shares (4 and 3), so the loss weighting matters; 30 // 7 = 4
# steps per epoch and a dropped tail of 2.
GLOBAL_BATCH = 7
EPOCHS = 2


class NoisyImages(Dataset[tuple[torch.Tensor, int]]):
    """Fixed 3x6x6 class patterns plus noise drawn from torch's generator (the augmentation)."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(11)
        self.labels = torch.randint(CLASSES, (TRAIN_SIZE,), generator=generator)
        self.patterns = torch.randn(CLASSES, 3, 6, 6, generator=generator)

    def __len__(self) -> int:
        return TRAIN_SIZE

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = int(self.labels[index])
        return self.patterns[label] + 0.5 * torch.randn(3, 6, 6), label


def main(out_file: Path) -> None:
    env = distributed.read_env()
    device = torch.device("cpu")
    distributed.init_process_group(env, device, timeout_s=120)
    torch.manual_seed(0)
    network: nn.Module = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, CLASSES),
    )
    network, _ = batchnorm.synchronise(network, env, device)
    model = DistributedDataParallel(network) if env.enabled else network
    plan = plan_batches(
        global_batch=GLOBAL_BATCH, world_size=env.world_size, train_size=TRAIN_SIZE, learning_rate=0.1
    )
    sampler = data.GlobalBatchSampler(TRAIN_SIZE, plan, rank=env.rank, seed=3)
    loader = DataLoader(data.SeededAugmentation(NoisyImages()), batch_sampler=sampler)
    optimizer = torch.optim.SGD(network.parameters(), lr=plan.learning_rate, momentum=0.9)
    for epoch in range(1, EPOCHS + 1):
        sampler.set_epoch(epoch)
        engine.train_one_epoch(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            loader,
            device,
            gradient_weight=plan.gradient_weight(env.rank),
        )
    # Ranks evaluate different numbers of batches (uneven evaluation shards): a collective hidden in
    # an evaluation forward pass would hang here.
    network.eval()
    with torch.inference_mode():
        for _ in range(env.rank + 1):
            network(torch.zeros(2, 3, 6, 6))
    if env.is_main:
        torch.save(network.state_dict(), out_file)
    distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
