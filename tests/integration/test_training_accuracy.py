"""A real training run on generated data, in "EC2" mode (no SageMaker variables at all): it learns
the held-out split, its metric lines parse with the HPO regexes, and it writes the model directory
and model.tar.gz that serving reads, with the monitoring baseline against which the held-out split
shows no drift and its colour-inverted copy does (the model sees other breeds in it)."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from dogbreed_job import artifacts, metrics, transforms
from dogbreed_job.model import build_model
from model_monitor.baseline import BASELINE_FILE, Baseline
from model_monitor.capture import CaptureRecord, payload
from model_monitor.drift import DRIFT, OK, Thresholds, drift_report, observe
from PIL import Image, ImageOps

from tests.integration import training_runs

pytestmark = pytest.mark.slow

CLASSES = 6
EPOCHS = 6


@dataclass(frozen=True)
class TrainedRun:
    run: training_runs.Run
    data_dir: Path
    model_dir: Path
    archive: Path
    metrics: dict[str, Any]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    root = tmp_path_factory.mktemp("ec2")
    data_dir = training_runs.dataset(root / "data", classes=CLASSES, per_class=48, size=40, seed=3)
    model_dir = root / "model"
    run = training_runs.run_train(
        [
            "--data-dir", str(data_dir),
            "--model-dir", str(model_dir),
            "--output-dir", str(root / "output"),
            "--epochs", str(EPOCHS),
            "--seed", "0",
            *training_runs.FAST_ARGS,
        ],
        training_runs.clean_env(),
    )  # fmt: skip
    training_runs.assert_ok(run)
    return TrainedRun(
        run=run,
        data_dir=data_dir,
        model_dir=model_dir,
        archive=root / artifacts.ARCHIVE_NAME,
        metrics=json.loads((model_dir / artifacts.METRICS_FILE).read_text()),
    )


def test_reaches_at_least_90_percent_on_the_held_out_test_split(trained: TrainedRun) -> None:
    test_images = sorted((trained.data_dir / "test").rglob("*.jpg"))
    train_names = {path.name for path in (trained.data_dir / "train").rglob("*.jpg")}

    assert len(trained.metrics["per_class_acc"]) == CLASSES >= 5
    assert trained.metrics["samples"]["test"] == len(test_images)
    assert not train_names & {path.name for path in test_images}
    assert trained.metrics["test_acc"] >= 0.9, trained.metrics
    assert trained.metrics["test_top5"] >= trained.metrics["test_acc"]


def test_metric_lines_parse_with_the_hpo_regexes_to_the_recorded_values(trained: TrainedRun) -> None:
    lines = training_runs.epoch_lines(trained.run.stdout)
    history = trained.metrics["history"]

    assert len(lines) == len(history) == EPOCHS
    for line, row in zip(lines, history, strict=True):
        parsed = metrics.parse_metrics(line)
        assert set(parsed) == {"train_loss", "val_loss", "val_acc"}
        for name, value in parsed.items():
            assert value == pytest.approx(row[name], abs=1e-6)
    final = metrics.parse_metrics(trained.run.stdout)
    for name in ("test_acc", "test_loss", "test_top5"):
        assert final[name] == pytest.approx(trained.metrics[name], abs=1e-6)
    # The latest val_acc (SageMaker's final value, the tuning objective) is the kept epoch's.
    assert final["val_acc"] == pytest.approx(trained.metrics["val_acc"], abs=1e-6)
    assert final["val_acc"] == pytest.approx(max(row["val_acc"] for row in history), abs=1e-6)


def test_best_epoch_by_validation_accuracy_is_kept(trained: TrainedRun) -> None:
    history = trained.metrics["history"]
    best = max(history, key=lambda row: row["val_acc"])

    assert trained.metrics["val_acc"] == best["val_acc"]
    assert history[trained.metrics["best_epoch"] - 1]["val_acc"] == best["val_acc"]


def test_ec2_mode_writes_the_model_dir_and_packs_it_like_sagemaker(trained: TrainedRun) -> None:
    model_dir = trained.model_dir
    expected = {
        artifacts.WEIGHTS_FILE,
        artifacts.CONFIG_FILE,
        artifacts.CLASSES_FILE,
        artifacts.METRICS_FILE,
        BASELINE_FILE,
        artifacts.ONNX_FILE,
        "code/inference.py",
        "code/dogbreed_job/transforms.py",
        "code/request_guards/__init__.py",
        "report/training_curves.png",
        "report/confusion_matrix.png",
        "report/report.md",
    }
    files = {path.relative_to(model_dir).as_posix() for path in model_dir.rglob("*") if path.is_file()}
    assert expected <= files

    with tarfile.open(trained.archive) as tar:
        assert set(tar.getnames()) == files

    config = artifacts.ModelConfig.load(model_dir)
    assert (config.backbone, config.num_classes, config.image_size) == ("resnet18", CLASSES, 32)
    assert config.model_version.startswith("local-")
    assert artifacts.load_classes(model_dir)[0] == "Affenpinscher"


def test_weights_and_onnx_export_reproduce_the_reported_test_accuracy(trained: TrainedRun) -> None:
    """The artifacts serving loads (no network) give the same answers as the evaluated model."""
    config = artifacts.ModelConfig.load(trained.model_dir)
    classes = artifacts.load_classes(trained.model_dir)
    model = build_model(config.backbone, config.num_classes, pretrained=False).eval()
    state = torch.load(trained.model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    session = ort.InferenceSession(
        str(trained.model_dir / artifacts.ONNX_FILE), providers=["CPUExecutionProvider"]
    )
    class_dirs = sorted(path.name for path in (trained.data_dir / "test").iterdir())
    batch, labels = [], []
    for class_dir in class_dirs:
        for path in sorted((trained.data_dir / "test" / class_dir).glob("*.jpg")):
            with Image.open(path) as image:
                batch.append(transforms.preprocess(image, config.image_size))
            labels.append(classes.index(artifacts.breed_name(class_dir)))
    inputs = np.stack(batch)

    (onnx_logits,) = session.run(["logits"], {"input": inputs})
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(inputs)).numpy()

    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-3, rtol=1e-3)
    accuracy = float((onnx_logits.argmax(axis=1) == np.asarray(labels)).mean())
    assert accuracy == pytest.approx(trained.metrics["test_acc"], abs=1e-9)


def test_the_baseline_holds_the_training_priors_and_validation_confidences(trained: TrainedRun) -> None:
    baseline = Baseline.from_json((trained.model_dir / BASELINE_FILE).read_text())

    samples = trained.metrics["samples"]
    assert baseline.model_version == trained.metrics["model_version"]
    assert baseline.classes == artifacts.load_classes(trained.model_dir)
    assert baseline.image_count == samples["train"]
    assert baseline.confidence_count == samples["valid"]
    per_class = [
        len(list((trained.data_dir / "train" / d).glob("*.jpg"))) for d in sorted_class_dirs(trained)
    ]
    assert baseline.class_priors == pytest.approx([count / samples["train"] for count in per_class])
    assert all(len(values) == samples["train"] for values in baseline.image_stats.values())


def sorted_class_dirs(trained: TrainedRun) -> list[str]:
    return sorted(path.name for path in (trained.data_dir / "train").iterdir())


def captured_predictions(trained: TrainedRun, *, invert: bool) -> list[CaptureRecord]:
    """The held-out split as the endpoint would capture it: the request image and the model's answer."""
    config = artifacts.ModelConfig.load(trained.model_dir)
    session = ort.InferenceSession(
        str(trained.model_dir / artifacts.ONNX_FILE), providers=["CPUExecutionProvider"]
    )
    records = []
    for path in sorted((trained.data_dir / "test").rglob("*.jpg")):
        with Image.open(path) as image:
            shown = ImageOps.invert(image.convert("RGB")) if invert else image.convert("RGB")
            body = io.BytesIO()
            shown.save(body, format="JPEG")
            inputs = np.stack([transforms.preprocess(shown, config.image_size)])
        (logits,) = session.run(["logits"], {"input": inputs})
        probabilities = torch.from_numpy(logits[0]).softmax(dim=0)
        best = int(probabilities.argmax())
        answer = {
            "model_version": config.model_version,
            "predictions": [{"class_index": best, "probability": float(probabilities[best])}],
        }
        records.append(
            CaptureRecord(
                event_id=path.name,
                inference_time=datetime.now(UTC),
                endpoint_input=payload("image/jpeg", "INPUT", body.getvalue(), as_text=False),
                endpoint_output=payload(
                    "application/json", "OUTPUT", json.dumps(answer).encode(), as_text=True
                ),
            )
        )
    return records


def test_the_held_out_split_shows_no_drift_and_its_inverted_copy_does(trained: TrainedRun) -> None:
    baseline = Baseline.from_json((trained.model_dir / BASELINE_FILE).read_text())
    thresholds = Thresholds(min_records=20)

    held_out = drift_report(
        baseline, map(observe, captured_predictions(trained, invert=False)), thresholds=thresholds
    )
    inverted = drift_report(
        baseline, map(observe, captured_predictions(trained, invert=True)), thresholds=thresholds
    )

    assert held_out.status == OK, held_out.as_dict()
    assert inverted.status == DRIFT, inverted.as_dict()
    assert inverted.class_js is not None and inverted.class_js >= thresholds.class_js
