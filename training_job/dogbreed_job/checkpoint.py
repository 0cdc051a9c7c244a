"""Training checkpoints for `--resume` (spot interruptions).

One dict per file, as in torchvision's reference scripts: model, optimizer, lr_scheduler, scaler,
epoch (the last finished epoch), best_acc, best_epoch, history and args. `checkpoint.pth` is
rewritten after every epoch; `best.pth` holds the weights of the best epoch by validation accuracy.
Writes go through a temporary file and a rename, so an interruption never leaves half a checkpoint.
On SageMaker, `/opt/ml/checkpoints` is synced to `checkpoint_s3_uri` and restored on restart.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pth"
BEST_WEIGHTS_FILE = "best.pth"
SAGEMAKER_CHECKPOINT_DIR = Path("/opt/ml/checkpoints")


def default_checkpoint_dir(environ: dict[str, str] | None = None) -> str | None:
    """`SM_CHECKPOINT_DIR`, else `/opt/ml/checkpoints` when it exists, else None (caller decides);
    on SageMaker, the job's own folder in it (`<dir>/<TRAINING_JOB_NAME>`).

    The trials of a tuning job share one CheckpointConfig.S3Uri, and SageMaker restores the whole
    prefix into every trial's checkpoint directory: a trial that resumed from the directory's root
    could load another trial's checkpoint. Each job reads and writes only its own folder."""
    env = os.environ if environ is None else environ
    if env.get("SM_CHECKPOINT_DIR"):
        base = Path(env["SM_CHECKPOINT_DIR"])
    elif SAGEMAKER_CHECKPOINT_DIR.is_dir():
        base = SAGEMAKER_CHECKPOINT_DIR
    else:
        return None
    job = env.get("TRAINING_JOB_NAME", "")
    return str(base / job) if job and "/" not in job and job not in (".", "..") else str(base)


def atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    partial.replace(path)


def save_checkpoint(checkpoint_dir: Path, state: dict[str, Any]) -> Path:
    path = checkpoint_dir / CHECKPOINT_FILE
    atomic_save(state, path)
    return path


def load_checkpoint(checkpoint_dir: Path) -> dict[str, Any] | None:
    """The saved training state, or None when there is no checkpoint yet."""
    path = checkpoint_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    # The checkpoint directory is synced from S3, so it is read like any untrusted file: tensors, plain
    # dicts, lists and numbers only (the args namespace is saved as a plain dict), never arbitrary pickles.
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "optimizer", "lr_scheduler", "epoch"):
        if key not in state:
            raise ValueError(f"{path} is not a training checkpoint (no {key!r})")
    return state


def save_best_weights(checkpoint_dir: Path, state_dict: dict[str, torch.Tensor]) -> Path:
    path = checkpoint_dir / BEST_WEIGHTS_FILE
    atomic_save(state_dict, path)
    return path


def load_best_weights(checkpoint_dir: Path) -> dict[str, torch.Tensor] | None:
    path = checkpoint_dir / BEST_WEIGHTS_FILE
    if not path.is_file():
        return None
    weights: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return weights


def check_ranks_agree(start_epoch: int, device: torch.device) -> None:
    """Every process must resume from the same epoch (each reads its own checkpoint copy)."""
    values = torch.tensor([start_epoch, -start_epoch], dtype=torch.int64, device=device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.MAX)
        if values[0].item() != -values[1].item():
            raise RuntimeError(
                "processes found different checkpoints to resume from; every host needs the same "
                "--checkpoint-dir content (SageMaker restores checkpoint_s3_uri to each host)"
            )
