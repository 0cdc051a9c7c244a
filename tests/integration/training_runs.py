"""Run training_job/train.py as real processes, the way SageMaker, torchrun or an EC2 user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dogbreed import TRAINING_JOB_DIR

TRAIN_SCRIPT = TRAINING_JOB_DIR / "train.py"
# Variables that would change where the job reads, writes or rendezvouses.
JOB_VARIABLE_PREFIXES = (
    "SM_",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_",
    "TRAINING_JOB",
)
# Small, fast and reliably learnable (see test_training_accuracy.py).
FAST_ARGS: tuple[str, ...] = (
    "--backbone", "resnet18",
    "--no-pretrained",
    "--image-size", "32",
    "--batch-size", "32",
    "--learning-rate", "0.002",
    "--workers", "0",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus every SageMaker and launcher variable, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(JOB_VARIABLE_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def train_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, str(TRAIN_SCRIPT), *args]


def run_train(args: Sequence[str], env: Mapping[str, str], *, timeout: float = 540) -> Run:
    completed = subprocess.run(
        train_command(args), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


def epoch_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("epoch=")]


def describe(run: Run) -> str:
    """Failure message: the tail of both streams."""
    return f"exit {run.returncode}\n--- stdout\n{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}"


def assert_ok(run: Run) -> None:
    assert run.returncode == 0, describe(run)


def dataset(root: Path, *, classes: int, per_class: int, size: int = 40, seed: int = 0) -> Path:
    from dogbreed.data.synth import synthesize

    return synthesize(root, classes=classes, per_class=per_class, size=size, seed=seed)
