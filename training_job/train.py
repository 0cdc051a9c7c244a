"""Train a dog-breed classifier. The same file runs on SageMaker (script mode, one or many
instances), on an EC2 box and on a laptop.

    python train.py --data-dir data/dogImages --model-dir model --backbone resnet18 --epochs 5
    torchrun --nproc-per-node 2 train.py --data-dir ... --model-dir ...

Paths default to SageMaker's variables (`SM_CHANNEL_TRAINING`, `SM_MODEL_DIR`,
`SM_OUTPUT_DATA_DIR`, `SM_CHECKPOINT_DIR`); with none of them set it runs on plain paths and also
packs the model directory as `model.tar.gz`. Distributed training starts from `RANK`/`WORLD_SIZE`
(torchrun, SageMaker's torch_distributed) or `SM_HOSTS`/`SM_CURRENT_HOST`; see
`dogbreed_job.distributed`. `--batch-size` is the global batch of one optimizer step at any
number of processes and `--learning-rate` applies as given (`dogbreed_job.batch_plan`), so a job on
N instances runs the optimisation a one-instance tuning trial ran. Only rank 0 prints metric lines
and writes files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dogbreed_job import (
    artifacts,
    baseline,
    batch_plan,
    batchnorm,
    checkpoint,
    data,
    distributed,
    engine,
    export,
)
from dogbreed_job.metrics import format_metrics_line
from dogbreed_job.model import (
    BACKBONES,
    CLOUD_DEFAULT_BACKBONE,
    FREEZE_MODES,
    PretrainedWeightsUnavailableError,
    build_model,
)
from torch import nn
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger("train")

# Hyperparameters SageMaker's containers, SDK and tuning jobs add on their own (`sagemaker_program`,
# `_tuning_objective_metric`, ...); ignored with a log line.
SAGEMAKER_INTERNAL_PREFIXES: tuple[str, ...] = ("sagemaker_", "_tuning")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


class DatasetCheckFailed(SystemExit):
    """The dataset is not fit for training; the message is the check's report."""


def str2bool(value: str | bool) -> bool:
    """`true/false` (any case), `1/0`, `yes/no`: SageMaker passes every hyperparameter as a string."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _add(parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, **kwargs: Any) -> None:
    """A `--kebab-case` flag that also answers to `--snake_case` (hyperparameter names)."""
    snake = "--" + flag[2:].replace("-", "_")
    parser.add_argument(*([flag, snake] if snake != flag else [flag]), **kwargs)


def _add_bool(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, *, default: bool, help: str
) -> None:
    """`--flag` alone means true; `--flag true|false` is what hyperparameters look like."""
    _add(parser, flag, type=str2bool, nargs="?", const=True, default=default, metavar="BOOL", help=help)


def get_args_parser(environ: dict[str, str] | None = None) -> argparse.ArgumentParser:
    env = dict(os.environ) if environ is None else environ
    parser = argparse.ArgumentParser(
        description="Train a dog-breed classifier (SageMaker script mode, EC2 or laptop).",
        allow_abbrev=False,
    )
    paths = parser.add_argument_group("paths (default to SageMaker's variables when set)")
    _add(
        paths,
        "--data-dir",
        default=env.get("SM_CHANNEL_TRAINING"),
        help="dataset root holding train/, valid/ and test/ (default $SM_CHANNEL_TRAINING)",
    )
    _add(
        paths, "--model-dir", default=env.get("SM_MODEL_DIR", "model"), help="model directory ($SM_MODEL_DIR)"
    )
    _add(
        paths,
        "--output-dir",
        default=env.get("SM_OUTPUT_DATA_DIR", "output"),
        help="extra outputs such as shard records ($SM_OUTPUT_DATA_DIR)",
    )
    _add(
        paths,
        "--checkpoint-dir",
        default=checkpoint.default_checkpoint_dir(env),
        help="checkpoints ($SM_CHECKPOINT_DIR; /opt/ml/checkpoints if present; else OUTPUT_DIR/checkpoints)",
    )
    _add_bool(
        paths, "--resume", default=False, help="continue from the checkpoint in --checkpoint-dir if any"
    )
    _add(
        paths,
        "--model-version",
        default=env.get("TRAINING_JOB_NAME") or time.strftime("local-%Y%m%d-%H%M%S", time.gmtime()),
        help="version recorded in model_config.json ($TRAINING_JOB_NAME or a UTC timestamp)",
    )

    model = parser.add_argument_group("model")
    _add(model, "--backbone", default=CLOUD_DEFAULT_BACKBONE, choices=BACKBONES)
    _add_bool(model, "--no-pretrained", default=False, help="train from scratch (no weight download)")
    _add(
        model,
        "--freeze",
        default="none",
        choices=FREEZE_MODES,
        help="train everything, the head, or last block + head",
    )

    hyper = parser.add_argument_group("hyperparameters")
    _add(hyper, "--epochs", type=int, default=10)
    _add(
        hyper,
        "--batch-size",
        type=int,
        default=32,
        help="global batch of one optimizer step, shared across all processes (the same at any world size)",
    )
    _add(hyper, "--learning-rate", type=float, default=1e-3, help="used as given at any world size")
    _add(hyper, "--weight-decay", type=float, default=1e-4)
    _add(hyper, "--label-smoothing", type=float, default=0.0)
    _add(hyper, "--optimizer", default="adamw", choices=("adamw", "sgd"))
    _add(hyper, "--momentum", type=float, default=0.9, help="SGD only")
    _add(hyper, "--image-size", type=int, default=224)
    _add(hyper, "--seed", type=int, default=42)

    runtime = parser.add_argument_group("runtime")
    _add(runtime, "--workers", type=int, default=min(4, os.cpu_count() or 1), help="data loader processes")
    _add(runtime, "--device", default="auto", choices=("auto", "cpu", "cuda"))
    _add_bool(runtime, "--amp", default=True, help="mixed precision (GPU only)")
    _add(
        runtime, "--master-port", type=int, default=None, help="rendezvous port with SM_HOSTS ($MASTER_PORT)"
    )
    _add(runtime, "--dist-timeout", type=float, default=600.0, help="seconds to wait for the other processes")
    _add_bool(runtime, "--check-data", default=True, help="validate the dataset before training")
    _add_bool(
        runtime,
        "--record-shards",
        default=False,
        help="write each rank's share of every epoch, its indices per optimizer step and its final "
        "weight digest to OUTPUT_DIR/shards/",
    )
    return parser


def parse_args(
    argv: Sequence[str] | None = None, environ: dict[str, str] | None = None
) -> argparse.Namespace:
    """Parse flags; SageMaker-internal hyperparameters (`--sagemaker_*`, `--_tuning*`) are ignored."""
    parser = get_args_parser(environ)
    args, unknown = parser.parse_known_args(argv)
    rejected: list[str] = []
    index = 0
    while index < len(unknown):
        token = unknown[index]
        name = token.lstrip("-").split("=", 1)[0]
        has_value = "=" not in token and index + 1 < len(unknown) and not unknown[index + 1].startswith("--")
        if token.startswith("--") and name.replace("-", "_").startswith(SAGEMAKER_INTERNAL_PREFIXES):
            logger.info("ignoring SageMaker hyperparameter %s", name)
            index += 2 if has_value else 1
            continue
        rejected.append(token)
        index += 1
    if rejected:
        parser.error(f"unrecognized arguments: {' '.join(rejected)}")
    if not args.data_dir:
        parser.error("--data-dir is required when SM_CHANNEL_TRAINING is not set")
    if args.checkpoint_dir is None:
        args.checkpoint_dir = str(Path(args.output_dir) / "checkpoints")
    for name in ("epochs", "batch_size", "image_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.learning_rate <= 0:
        parser.error("--learning-rate must be positive")
    if not 0.0 <= args.label_smoothing < 1.0:
        parser.error("--label-smoothing must be in [0, 1)")
    if args.workers < 0:
        parser.error("--workers must be >= 0")
    return args


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "backbone", "no_pretrained", "freeze", "epochs", "batch_size", "learning_rate", "weight_decay",
        "label_smoothing", "optimizer", "momentum", "image_size", "seed",
    )  # fmt: skip
    return {key: getattr(args, key) for key in keys}


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def main(args: argparse.Namespace) -> dict[str, Any] | None:
    """Train, evaluate the best epoch on the test split and (rank 0) write the model directory.
    Returns metrics.json's content on rank 0, None elsewhere."""
    started = time.monotonic()
    env = distributed.read_env(master_port=args.master_port)
    batch_plan.check_global_batch(args.batch_size, env.world_size)
    device = distributed.select_device(env, args.device)
    use_amp = bool(args.amp) and device.type == "cuda"
    channels_last = device.type == "cuda"
    data_dir = Path(args.data_dir)
    model_dir = Path(args.model_dir)
    output_dir = Path(args.output_dir)
    checkpoint_dir = Path(args.checkpoint_dir)

    if args.check_data and env.local_rank == 0:
        # Once per machine, before joining the group: a bad dataset fails the job at once.
        check_dataset(data_dir)
    distributed.init_process_group(env, device, timeout_s=args.dist_timeout)
    set_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    logger.info(
        "rank %d/%d on %s (amp=%s channels_last=%s) args=%s",
        env.rank, env.world_size, device, use_amp, channels_last, vars(args),
    )  # fmt: skip

    splits = data.load_splits(data_dir, args.image_size)
    classes = splits.classes
    num_classes = len(classes)
    plan = batch_plan.plan_batches(
        global_batch=args.batch_size,
        world_size=env.world_size,
        train_size=len(splits.train),
        learning_rate=args.learning_rate,
    )
    if env.is_main:
        print(plan.log_line(), flush=True)
    loaders = data.build_loaders(
        splits,
        plan=plan,
        workers=args.workers,
        env=env,
        seed=args.seed,
        pin_memory=device.type == "cuda",
    )
    logger.info(
        "%d classes; train/valid/test = %d/%d/%d images",
        num_classes, len(splits.train), len(splits.valid), len(splits.test),
    )  # fmt: skip

    network = build_pretrained_once_per_machine(args, num_classes, env)
    # BatchNorm statistics over the global batch, as on one process.
    network, batchnorm_class = batchnorm.synchronise(network, env, device)
    network = network.to(device)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    model: nn.Module = network
    if env.enabled:
        model = DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)

    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    optimizer = build_optimizer([p for p in network.parameters() if p.requires_grad], args)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    scaler = torch.amp.GradScaler("cuda") if use_amp and not torch.cuda.is_bf16_supported() else None

    start_epoch = 1
    best_acc = -1.0
    best_epoch = 0
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    if args.resume:
        state = checkpoint.load_checkpoint(checkpoint_dir)
        if state is None:
            logger.info("--resume: no checkpoint in %s yet, starting from epoch 1", checkpoint_dir)
        else:
            network.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            lr_scheduler.load_state_dict(state["lr_scheduler"])
            lr_scheduler.T_max = args.epochs  # a resumed run may ask for more epochs
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            start_epoch = int(state["epoch"]) + 1
            best_acc = float(state.get("best_acc", -1.0))
            best_epoch = int(state.get("best_epoch", 0))
            history = list(state.get("history", []))
            best_state = checkpoint.load_best_weights(checkpoint_dir)
            logger.info("resumed from %s: continuing at epoch %d", checkpoint_dir, start_epoch)
    _check_ranks_agree(start_epoch, device)

    shard_records: dict[str, list[int]] = {}
    batch_records: dict[str, list[list[int]]] = {}
    for epoch in range(start_epoch, args.epochs + 1):
        # Shuffling and augmentation depend on (seed, epoch) only, whatever the world size, and the
        # rest of torch's randomness on (seed, epoch, rank), so a resumed run draws what an
        # uninterrupted one would have drawn.
        set_seed(args.seed + 1000 * epoch + env.rank)
        loaders.train_sampler.set_epoch(epoch)
        if args.record_shards:
            shard_records[str(epoch)] = loaders.train_sampler.epoch_share()
            batch_records[str(epoch)] = loaders.train_sampler.local_batches()
        epoch_started = time.monotonic()
        stats = engine.train_one_epoch(
            model, criterion, optimizer, loaders.train, device,
            scaler=scaler, amp=use_amp, channels_last=channels_last,
            gradient_weight=plan.gradient_weight(env.rank),
        )  # fmt: skip
        # Evaluate the plain network (no collectives inside forward, so ranks may hold different
        # numbers of batches) once every rank has rank 0's BatchNorm statistics.
        distributed.broadcast_buffers(network)
        val = engine.evaluate(
            network, loaders.valid, device, num_classes=num_classes, amp=use_amp, channels_last=channels_last
        )
        lr_scheduler.step()
        row = {
            "epoch": epoch,
            "train_loss": stats.loss,
            "train_acc": stats.acc,
            "val_loss": val.loss,
            "val_acc": val.acc,
            "seconds": time.monotonic() - epoch_started,
        }
        history.append(row)
        improved = val.acc > best_acc
        if improved:
            best_acc, best_epoch = val.acc, epoch
            best_state = {
                key: value.detach().to("cpu").clone() for key, value in network.state_dict().items()
            }
        if env.is_main:
            # The checkpoint is durable before the epoch is reported.
            if improved and best_state is not None:
                checkpoint.save_best_weights(checkpoint_dir, best_state)
            checkpoint.save_checkpoint(
                checkpoint_dir,
                {
                    "model": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "lr_scheduler": lr_scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "epoch": epoch,
                    "best_acc": best_acc,
                    "best_epoch": best_epoch,
                    "history": history,
                    "args": vars(args),
                },
            )
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

    # The final model is the best epoch by validation accuracy.
    if best_state is not None:
        network.load_state_dict(best_state)
    test = engine.evaluate(
        network, loaders.test, device, num_classes=num_classes, amp=use_amp, channels_last=channels_last
    )
    # Every rank counts its share of the validation split for the monitoring baseline.
    validation_confidences = baseline.validation_confidence_counts(
        network, loaders.valid, device, amp=use_amp, channels_last=channels_last
    )
    training_seconds = time.monotonic() - started
    if args.record_shards:
        write_json(
            output_dir / "shards" / f"rank{env.rank}.json",
            {
                "rank": env.rank,
                "world_size": env.world_size,
                "train_size": len(splits.train),
                "epochs": shard_records,
                "batches": batch_records,
                "weights_sha256": export.state_dict_digest(network),
            },
        )
    result: dict[str, Any] | None = None
    if env.is_main:
        print(format_metrics_line(test_acc=test.acc, test_loss=test.loss, test_top5=test.top5), flush=True)
        result = {
            "test_acc": test.acc,
            "test_loss": test.loss,
            "test_top5": test.top5,
            "per_class_acc": test.per_class_acc(classes),
            "best_epoch": best_epoch,
            "val_acc": best_acc,
            "epochs_run": len(history),
            "hyperparameters": hyperparameters(args),
            "model_version": args.model_version,
            "world_size": env.world_size,
            "distributed": {**plan.as_dict(), "batchnorm": batchnorm_class},
            "device": device.type,
            "training_seconds": round(training_seconds, 3),
            "samples": {"train": len(splits.train), "valid": len(splits.valid), "test": len(splits.test)},
            "history": history,
            "confusion_matrix": test.confusion,
        }
        config = artifacts.ModelConfig(
            backbone=args.backbone,
            num_classes=num_classes,
            image_size=args.image_size,
            model_version=args.model_version,
        )
        export.export_model_dir(
            network, model_dir=model_dir, classes=classes, config=config, metrics=result, history=history
        )
        baseline.write_baseline(
            model_dir,
            splits=splits,
            model_version=args.model_version,
            confidence_counts_=validation_confidences,
        )
        if not os.environ.get("SM_MODEL_DIR"):
            export.pack_model_archive(model_dir)
        logger.info("done in %.1fs; model directory %s", training_seconds, model_dir)
    distributed.barrier()
    distributed.destroy_process_group()
    return result


def _check_ranks_agree(start_epoch: int, device: torch.device) -> None:
    """Every process must resume from the same epoch (each reads its own checkpoint copy)."""
    values = torch.tensor([start_epoch, -start_epoch], dtype=torch.int64, device=device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.MAX)
        if values[0].item() != -values[1].item():
            raise RuntimeError(
                "processes found different checkpoints to resume from; every host needs the same "
                "--checkpoint-dir content (SageMaker restores checkpoint_s3_uri to each host)"
            )


def configure_logging() -> None:
    rank = os.environ.get("RANK") or os.environ.get("SM_CURRENT_HOST") or "0"
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"%(asctime)s [{rank}] %(levelname)s %(name)s: %(message)s",
    )


def write_failure_reason(message: str, environ: dict[str, str] | None = None) -> None:
    """SageMaker shows the content of `$SM_OUTPUT_DIR/failure` as the job's FailureReason."""
    env = os.environ if environ is None else environ
    output_dir = env.get("SM_OUTPUT_DIR")
    if output_dir:
        path = Path(output_dir) / "failure"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message[:1024])


# Errors whose message says everything: no traceback, exit code 1.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    PretrainedWeightsUnavailableError,
    data.DatasetLayoutError,
    export.ExportError,
    batch_plan.BatchPlanError,
)


def run(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = parse_args(argv)
    try:
        main(args)
    except DatasetCheckFailed as error:
        write_failure_reason(str(error.code))
        raise
    except EXPECTED_ERRORS as error:
        message = f"{type(error).__name__}: {error}"
        write_failure_reason(message)
        print(f"train.py: error: {message}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:
        write_failure_reason(f"{type(error).__name__}: {error}")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(run())
