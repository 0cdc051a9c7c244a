"""The end of a run on rank 0: the test metric line, metrics.json's content and the model directory
(weights, ONNX export, `code/`, report, monitoring baseline; plus `model.tar.gz` off SageMaker).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dogbreed_job import artifacts, baseline, data, engine, export
from dogbreed_job.arguments import hyperparameters
from dogbreed_job.batch_plan import BatchPlan
from dogbreed_job.fit import Progress, Trainer
from dogbreed_job.metrics import format_metrics_line

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinishedRun:
    """What the end of a run reads: the trained model, its test result and how it got there."""

    trainer: Trainer
    test: engine.EvalResult
    progress: Progress
    splits: data.DataSplits
    plan: BatchPlan
    validation_confidences: list[int]  # every rank's share of the validation split, for the baseline
    training_seconds: float


def training_result(args: argparse.Namespace, run: FinishedRun) -> dict[str, Any]:
    """metrics.json: the test split's metrics, the best epoch, the run's settings and its history."""
    test, progress, splits, trainer = run.test, run.progress, run.splits, run.trainer
    return {
        "test_acc": test.acc,
        "test_loss": test.loss,
        "test_top5": test.top5,
        "per_class_acc": test.per_class_acc(splits.classes),
        "best_epoch": progress.best_epoch,
        "val_acc": progress.best_acc,
        "epochs_run": len(progress.history),
        "hyperparameters": hyperparameters(args),
        "model_version": args.model_version,
        "world_size": trainer.runtime.env.world_size,
        "distributed": {**run.plan.as_dict(), "batchnorm": trainer.batchnorm_class},
        "device": trainer.runtime.device.type,
        "training_seconds": round(run.training_seconds, 3),
        "samples": {"train": len(splits.train), "valid": len(splits.valid), "test": len(splits.test)},
        "history": progress.history,
        "confusion_matrix": test.confusion,
    }


def finish(args: argparse.Namespace, run: FinishedRun) -> dict[str, Any]:
    """Print the final metric line and write the model directory. Returns metrics.json's content.

    The line repeats the kept (best) epoch's `val_acc`: SageMaker takes a metric's latest value as
    the job's final one (the tuning objective, FinalMetricDataList), and the model exported is that
    epoch's, not the last epoch's."""
    test, trainer, splits = run.test, run.trainer, run.splits
    print(
        format_metrics_line(
            val_acc=run.progress.best_acc, test_acc=test.acc, test_loss=test.loss, test_top5=test.top5
        ),
        flush=True,
    )
    result = training_result(args, run)
    model_dir = Path(args.model_dir)
    config = artifacts.ModelConfig(
        backbone=args.backbone,
        num_classes=trainer.num_classes,
        image_size=args.image_size,
        model_version=args.model_version,
    )
    export.export_model_dir(
        trainer.network,
        model_dir=model_dir,
        classes=splits.classes,
        config=config,
        metrics=result,
        history=run.progress.history,
    )
    baseline.write_baseline(
        model_dir,
        splits=splits,
        model_version=args.model_version,
        confidence_counts_=run.validation_confidences,
    )
    if not os.environ.get("SM_MODEL_DIR"):
        export.pack_model_archive(model_dir)
    logger.info("done in %.1fs; model directory %s", run.training_seconds, model_dir)
    return result
