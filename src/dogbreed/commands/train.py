"""`dogbreed train [train.py args]`: the training job run locally (the "EC2" mode).

Every argument goes unchanged to `training_job/train.py`, which runs as its own process exactly as
SageMaker would run it (`dogbreed train --help` shows the job's flags).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from dogbreed import TRAINING_JOB_DIR

TRAIN_SCRIPT = TRAINING_JOB_DIR / "train.py"


def register(subparsers: Any) -> None:
    # No options of its own: "+" as the prefix keeps argparse from reading train.py's --flags.
    train = subparsers.add_parser(
        "train",
        help="run the training job locally (args go to training_job/train.py; see `dogbreed train --help`)",
        add_help=False,
        prefix_chars="+",
    )
    train.add_argument("train_args", nargs=argparse.REMAINDER, help="training_job/train.py arguments")
    train.set_defaults(handler=_train)


def train_command(train_args: Sequence[str]) -> list[str]:
    """The command line that runs the training job with this interpreter."""
    return [sys.executable, str(TRAIN_SCRIPT), *train_args]


def run_training(train_args: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run train.py as a child process (output streams through); returns its exit code."""
    completed = subprocess.run(train_command(train_args), env=None if env is None else dict(env), check=False)
    return completed.returncode


def _train(args: argparse.Namespace) -> int:
    return run_training(args.train_args)
