"""The model directory contract shared by training, serving and the Lambdas.

A model directory (SageMaker's `SM_MODEL_DIR`, packed as `model.tar.gz`) holds:

    model.pth           state_dict of the network (loads with no network access)
    model_config.json   ModelConfig below
    classes.json        JSON list: position = class_index, value = breed name ("Labrador_retriever")
    metrics.json        test_acc, test_loss, test_top5, per_class_acc, best_epoch, ...
    baseline.json       what the monitor compares traffic against (model_monitor.baseline)
    model.onnx          ONNX export (dynamic batch), checked against PyTorch outputs
    code/               inference.py and the packages it imports (no requirements.txt: nothing to install)
    report/             training_curves.png, confusion_matrix.png, report.md
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

WEIGHTS_FILE = "model.pth"
CONFIG_FILE = "model_config.json"
CLASSES_FILE = "classes.json"
METRICS_FILE = "metrics.json"
ONNX_FILE = "model.onnx"
CODE_DIR = "code"
REPORT_DIR = "report"
ARCHIVE_NAME = "model.tar.gz"


@dataclass(frozen=True)
class ModelConfig:
    backbone: str
    num_classes: int
    image_size: int
    model_version: str

    def save(self, model_dir: Path) -> None:
        (model_dir / CONFIG_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, model_dir: Path) -> ModelConfig:
        raw = json.loads((model_dir / CONFIG_FILE).read_text())
        return cls(
            backbone=str(raw["backbone"]),
            num_classes=int(raw["num_classes"]),
            image_size=int(raw["image_size"]),
            model_version=str(raw["model_version"]),
        )


def breed_name(class_dir_name: str) -> str:
    """`096.Labrador_retriever` -> `Labrador_retriever`."""
    prefix, _, name = class_dir_name.partition(".")
    return name if prefix.isdigit() and name else class_dir_name


def save_classes(model_dir: Path, classes: list[str]) -> None:
    (model_dir / CLASSES_FILE).write_text(json.dumps(classes, indent=2) + "\n")


def load_classes(model_dir: Path) -> list[str]:
    classes = json.loads((model_dir / CLASSES_FILE).read_text())
    if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
        raise ValueError(f"{CLASSES_FILE} must be a JSON list of breed names")
    return classes
