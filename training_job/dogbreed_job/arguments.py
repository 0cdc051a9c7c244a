"""train.py's command line: the flags, which are also the SageMaker hyperparameters.

Every flag answers to `--kebab-case` and `--snake_case` (SageMaker passes hyperparameters as
`--key value` strings), boolean flags take a value or none, paths default to SageMaker's variables,
and SageMaker's own hyperparameters (`sagemaker_*`, `_tuning*`) are ignored with a log line.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dogbreed_job import checkpoint
from dogbreed_job.model import BACKBONES, CLOUD_DEFAULT_BACKBONE, FREEZE_MODES

logger = logging.getLogger(__name__)

# Hyperparameters SageMaker's containers, SDK and tuning jobs add on their own (`sagemaker_program`,
# `_tuning_objective_metric`, ...); ignored with a log line.
SAGEMAKER_INTERNAL_PREFIXES: tuple[str, ...] = ("sagemaker_", "_tuning")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


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


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that define the optimisation, as metrics.json records them."""
    keys = (
        "backbone", "no_pretrained", "freeze", "epochs", "batch_size", "learning_rate", "weight_decay",
        "label_smoothing", "optimizer", "momentum", "image_size", "seed",
    )  # fmt: skip
    return {key: getattr(args, key) for key in keys}
