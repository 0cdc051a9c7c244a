"""Run training_job/train.py as real processes, the way SageMaker, torchrun or an EC2 user would,
and the tiny DDP worker (training_ddp_worker.py) that compares N processes with one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dogbreed import TRAINING_JOB_DIR
from dogbreed.local.sagemaker.container import JOB_VARIABLE_PREFIXES

TRAIN_SCRIPT = TRAINING_JOB_DIR / "train.py"
DDP_WORKER_SCRIPT = Path(__file__).with_name("training_ddp_worker.py")
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


def run_ddp_worker(out_file: Path, *, world_size: int, timeout: float = 120) -> dict[str, Any]:
    """Run training_ddp_worker.py on `world_size` processes (torchrun's variables, one thread
    each) and return the state_dict rank 0 saved."""
    from dogbreed.loopback import free_port

    port = free_port()
    python_path = os.pathsep.join(filter(None, [str(TRAINING_JOB_DIR), os.environ.get("PYTHONPATH")]))
    processes = []
    for rank in range(world_size):
        launcher = (
            {
                "RANK": str(rank),
                "WORLD_SIZE": str(world_size),
                "LOCAL_RANK": str(rank),
                "LOCAL_WORLD_SIZE": str(world_size),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            }
            if world_size > 1
            else {}
        )
        env = clean_env(PYTHONPATH=python_path, OMP_NUM_THREADS="1", **launcher)
        processes.append(
            subprocess.Popen(
                [sys.executable, str(DDP_WORKER_SCRIPT), str(out_file)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for process in processes:
        output, _ = process.communicate(timeout=timeout)
        assert process.returncode == 0, output[-3000:]
    state: dict[str, Any] = torch.load(out_file, map_location="cpu", weights_only=True)
    return state
