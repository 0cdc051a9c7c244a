"""The optimisation of one run: the network on this process's device (in DDP when distributed), the
optimizer and its schedule, resuming from a checkpoint, and the epoch loop, which checkpoints every
epoch and then (rank 0) prints the epoch's metric line.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dogbreed_job import baseline, batchnorm, checkpoint, data, distributed, engine, export
from dogbreed_job.batch_plan import BatchPlan
from dogbreed_job.metrics import format_metrics_line
from dogbreed_job.model import build_model

logger = logging.getLogger(__name__)

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its place in the job, its device and the precision settings."""

    env: distributed.DistributedEnv
    device: torch.device
    amp: bool
    channels_last: bool

    @classmethod
    def select(cls, env: distributed.DistributedEnv, requested_device: str, *, amp: bool) -> Runtime:
        """Mixed precision (when asked for) and channels_last on CUDA only."""
        device = distributed.select_device(env, requested_device)
        return cls(
            env=env,
            device=device,
            amp=bool(amp) and device.type == "cuda",
            channels_last=device.type == "cuda",
        )


@dataclass
class Progress:
    """What the epochs so far have produced; every checkpoint holds it and `--resume` restores it."""

    start_epoch: int = 1
    best_acc: float = -1.0
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None  # the best epoch's weights, on the CPU


@dataclass
class ShardRecords:
    """`--record-shards`: this rank's share of every epoch and its indices per optimizer step."""

    epochs: dict[str, list[int]] = field(default_factory=dict)
    batches: dict[str, list[list[int]]] = field(default_factory=dict)

    def record(self, epoch: int, sampler: data.GlobalBatchSampler) -> None:
        self.epochs[str(epoch)] = sampler.epoch_share()
        self.batches[str(epoch)] = sampler.local_batches()

    def write(
        self, output_dir: Path, *, env: distributed.DistributedEnv, train_size: int, network: nn.Module
    ) -> None:
        """`OUTPUT_DIR/shards/rank<N>.json`, with the digest of the final weights."""
        payload = {
            "rank": env.rank,
            "world_size": env.world_size,
            "train_size": train_size,
            "epochs": self.epochs,
            "batches": self.batches,
            "weights_sha256": export.state_dict_digest(network),
        }
        path = output_dir / "shards" / f"rank{env.rank}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")


def build_optimizer(parameters: list[nn.Parameter], args: argparse.Namespace) -> torch.optim.Optimizer:
    if args.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=args.learning_rate, momentum=args.momentum, weight_decay=args.weight_decay
        )
    return torch.optim.AdamW(parameters, lr=args.learning_rate, weight_decay=args.weight_decay)


def build_pretrained_once_per_machine(
    args: argparse.Namespace, num_classes: int, env: distributed.DistributedEnv
) -> nn.Module:
    """The first process on each machine downloads the pretrained weights into the torch hub cache;
    the others wait for it, then load from the cache."""
    pretrained = not args.no_pretrained
    if pretrained and env.local_rank != 0:
        distributed.barrier()
    network = build_model(args.backbone, num_classes, pretrained=pretrained, freeze=args.freeze)
    if pretrained and env.local_rank == 0:
        distributed.barrier()
    return network


@dataclass
class Trainer:
    """The network and everything that updates it."""

    runtime: Runtime
    num_classes: int
    network: nn.Module  # the plain network: evaluated, checkpointed and exported
    model: nn.Module  # what trains: the network, in DDP when distributed
    batchnorm_class: str
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.CosineAnnealingLR
    scaler: torch.amp.GradScaler | None

    @classmethod
    def build(cls, args: argparse.Namespace, num_classes: int, runtime: Runtime) -> Trainer:
        env, device = runtime.env, runtime.device
        network = build_pretrained_once_per_machine(args, num_classes, env)
        # BatchNorm statistics over the global batch, as on one process.
        network, batchnorm_class = batchnorm.synchronise(network, env, device)
        network = network.to(device)
        if runtime.channels_last:
            network = network.to(memory_format=torch.channels_last)
        model: nn.Module = network
        if env.enabled:
            model = DistributedDataParallel(
                network, device_ids=[device.index] if device.type == "cuda" else None
            )
        optimizer = build_optimizer([p for p in network.parameters() if p.requires_grad], args)
        return cls(
            runtime=runtime,
            num_classes=num_classes,
            network=network,
            model=model,
            batchnorm_class=batchnorm_class,
            criterion=nn.CrossEntropyLoss(label_smoothing=args.label_smoothing),
            optimizer=optimizer,
            lr_scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs),
            scaler=(torch.amp.GradScaler("cuda") if runtime.amp and not engine.native_bf16() else None),
        )

    def starting_point(self, args: argparse.Namespace, checkpoint_dir: Path) -> Progress:
        """A fresh start, or with `--resume` the state of the checkpoint in `checkpoint_dir` when
        there is one; every process must start from the same epoch."""
        progress = self._resume(args, checkpoint_dir) if args.resume else Progress()
        checkpoint.check_ranks_agree(progress.start_epoch, self.runtime.device)
        return progress

    def _resume(self, args: argparse.Namespace, checkpoint_dir: Path) -> Progress:
        state = checkpoint.load_checkpoint(checkpoint_dir)
        if state is None:
            logger.info("--resume: no checkpoint in %s yet, starting from epoch 1", checkpoint_dir)
            return Progress()
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.lr_scheduler.T_max = args.epochs  # a resumed run may ask for more epochs
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        progress = Progress(
            start_epoch=int(state["epoch"]) + 1,
            best_acc=float(state.get("best_acc", -1.0)),
            best_epoch=int(state.get("best_epoch", 0)),
            history=list(state.get("history", [])),
            best_state=checkpoint.load_best_weights(checkpoint_dir),
        )
        logger.info("resumed from %s: continuing at epoch %d", checkpoint_dir, progress.start_epoch)
        return progress

    def evaluate(self, loader: Batches) -> engine.EvalResult:
        """The plain network over `loader` (this rank's share), summed across processes."""
        runtime = self.runtime
        return engine.evaluate(
            self.network,
            loader,
            runtime.device,
            num_classes=self.num_classes,
            amp=runtime.amp,
            channels_last=runtime.channels_last,
        )

    def validation_confidences(self, loader: Batches) -> list[int]:
        """The monitoring baseline's confidence counts; every rank counts its share of `loader`."""
        runtime = self.runtime
        return baseline.validation_confidence_counts(
            self.network, loader, runtime.device, amp=runtime.amp, channels_last=runtime.channels_last
        )

    def fit(
        self,
        args: argparse.Namespace,
        *,
        loaders: data.Loaders,
        plan: BatchPlan,
        progress: Progress,
        checkpoint_dir: Path,
        shards: ShardRecords | None = None,
    ) -> None:
        """Epochs `progress.start_epoch..args.epochs`: train, validate, keep the best weights in
        `progress`, then (rank 0) checkpoint and print the metric line."""
        env, runtime = self.runtime.env, self.runtime
        for epoch in range(progress.start_epoch, args.epochs + 1):
            # Shuffling and augmentation depend on (seed, epoch) only, whatever the world size, and the
            # rest of torch's randomness on (seed, epoch, rank), so a resumed run draws what an
            # uninterrupted one would have drawn.
            set_seed(args.seed + 1000 * epoch + env.rank)
            loaders.train_sampler.set_epoch(epoch)
            if shards is not None:
                shards.record(epoch, loaders.train_sampler)
            epoch_started = time.monotonic()
            stats = engine.train_one_epoch(
                self.model, self.criterion, self.optimizer, loaders.train, runtime.device,
                scaler=self.scaler, amp=runtime.amp, channels_last=runtime.channels_last,
                gradient_weight=plan.gradient_weight(env.rank),
            )  # fmt: skip
            # Evaluate the plain network (no collectives inside forward, so ranks may hold different
            # numbers of batches) once every rank has rank 0's BatchNorm statistics.
            distributed.broadcast_buffers(self.network)
            val = self.evaluate(loaders.valid)
            self.lr_scheduler.step()
            row = {
                "epoch": epoch,
                "train_loss": stats.loss,
                "train_acc": stats.acc,
                "val_loss": val.loss,
                "val_acc": val.acc,
                "seconds": time.monotonic() - epoch_started,
            }
            progress.history.append(row)
            improved = val.acc > progress.best_acc
            if improved:
                progress.best_acc, progress.best_epoch = val.acc, epoch
                progress.best_state = {
                    key: value.detach().to("cpu").clone() for key, value in self.network.state_dict().items()
                }
            if env.is_main:
                # The checkpoint is durable before the epoch is reported.
                if improved and progress.best_state is not None:
                    checkpoint.save_best_weights(checkpoint_dir, progress.best_state)
                self._save_checkpoint(checkpoint_dir, epoch, progress, args)
                print(
                    format_metrics_line(
                        epoch=epoch,
                        train_loss=stats.loss,
                        train_acc=stats.acc,
                        val_loss=val.loss,
                        val_acc=val.acc,
                    ),
                    flush=True,
                )
            distributed.barrier()

    def _save_checkpoint(
        self, checkpoint_dir: Path, epoch: int, progress: Progress, args: argparse.Namespace
    ) -> None:
        checkpoint.save_checkpoint(
            checkpoint_dir,
            {
                "model": self.network.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.lr_scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "epoch": epoch,
                "best_acc": progress.best_acc,
                "best_epoch": progress.best_epoch,
                "history": progress.history,
                "args": vars(args),
            },
        )
