"""`dogbreed train` passes everything to train.py; `dogbreed demo` summarizes a model directory;
the training job's pinned requirements agree with the project's constraints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dogbreed import REPO_ROOT, TRAINING_JOB_DIR
from dogbreed.cli import build_parser
from dogbreed.commands import demo


def test_train_arguments_reach_train_py_untouched() -> None:
    argv = ["train", "--data-dir", "d", "--epochs", "3", "--no-pretrained", "--help"]

    args = build_parser().parse_args(argv)

    assert args.train_args == argv[1:]


def test_dogbreed_train_help_is_train_py_help() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "dogbreed", "train", "--help"], capture_output=True, text=True, timeout=120
    )

    assert completed.returncode == 0, completed.stderr
    for flag in ("--learning-rate", "--no-pretrained", "--checkpoint-dir", "--resume", "--freeze"):
        assert flag in completed.stdout


def test_dogbreed_train_returns_train_py_exit_code() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "dogbreed", "train", "--data-dir", "nowhere", "--epochs", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 2
    assert "--epochs must be at least 1" in completed.stderr


def test_demo_summary_names_the_results_and_the_steps_to_come(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    metrics = {
        "test_acc": 0.95,
        "test_top5": 1.0,
        "test_loss": 0.2,
        "val_acc": 0.97,
        "best_epoch": 5,
        "epochs_run": 6,
        "model_version": "demo-1",
        "samples": {"train": 600, "valid": 150, "test": 150},
        "per_class_acc": {"Akita": 0.8, "Affenpinscher": 1.0},
    }
    (model_dir / "metrics.json").write_text(json.dumps(metrics))

    summary = demo.render_summary(model_dir, train_seconds=61.2, total_seconds=70.9)

    assert "test accuracy   0.9500" in summary
    assert "weakest breed   Akita (0.8000)" in summary
    assert str(model_dir / "report" / "confusion_matrix.png") in summary
    assert str(tmp_path / "model.tar.gz") in summary
    for step in ("tuning", "multi-instance", "gate", "deploy", "auto scaling", "Lambdas"):
        assert step in summary


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.lower()] = version
    return pins


def test_training_requirements_match_the_project_constraints() -> None:
    constraints = _pins((REPO_ROOT / "constraints.txt").read_text().splitlines())
    training = _pins((TRAINING_JOB_DIR / "requirements.txt").read_text().splitlines())

    assert {"onnx", "onnxruntime", "matplotlib"} <= set(training)
    for name, version in training.items():
        assert constraints.get(name) == version, name
