"""`dogbreed demo`: the main job end to end on this machine, on synthetic data.

synthesize a dataset -> check it -> train and evaluate a small model with the real training job
(train.py as its own process, "EC2" mode) -> print the evaluation summary and where the model
directory, model.tar.gz and the evaluation report are. The whole pipeline (tuning, multi-instance
training, gate, deploy, auto scaling, inference Lambdas) runs on the local cloud with
`dogbreed local demo`; the summary lists those steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from dogbreed.commands.train import run_training

# What the full pipeline adds after training (`dogbreed local demo` runs all of it).
PIPELINE_STEPS_TO_COME: tuple[str, ...] = (
    "hyperparameter tuning job (SageMaker HPO over train.py, objective val_acc)",
    "multi-instance training job (real DDP across instances, torch_distributed)",
    "accuracy gate against the model in production",
    "endpoint deploy or blue/green update without downtime",
    "target-tracking auto scaling for the endpoint",
    "inference Lambdas (API Gateway + S3 trigger) writing results to S3 and DynamoDB",
)


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="synthetic data -> data check -> train -> evaluation report, on this machine",
        description="Run the main job end to end on synthetic data: synthesize a dataset, check it, "
        "train and evaluate a small model with training_job/train.py, and print the evaluation summary.",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="work folder (default demo-output)"
    )
    demo.add_argument("--classes", type=int, default=10, help="breeds in the synthetic dataset (default 10)")
    demo.add_argument("--per-class", type=int, default=60, help="training images per breed (default 60)")
    demo.add_argument("--size", type=int, default=64, help="synthetic image side in px (default 64)")
    demo.add_argument("--backbone", default="resnet18", help="train.py --backbone (default resnet18)")
    demo.add_argument("--image-size", type=int, default=64, help="train.py --image-size (default 64)")
    demo.add_argument("--epochs", type=int, default=6, help="train.py --epochs (default 6)")
    demo.add_argument("--batch-size", type=int, default=32, help="train.py --batch-size (default 32)")
    demo.add_argument("--learning-rate", type=float, default=2e-3, help="train.py --learning-rate")
    demo.add_argument("--workers", type=int, default=0, help="train.py --workers (default 0)")
    demo.add_argument("--seed", type=int, default=0, help="dataset and training seed (default 0)")
    demo.set_defaults(handler=_demo)


def _step(number: int, title: str) -> None:
    print(f"\n== [{number}/4] {title}", flush=True)


def _demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out: Path = args.out.resolve()
    data_dir = out / "data"
    model_dir = out / "model"
    output_dir = out / "output"

    _step(1, f"synthesize {args.classes} breeds x {args.per_class} training images ({args.size} px)")
    from dogbreed.data.synth import synthesize

    synthesize(
        data_dir,
        classes=args.classes,
        per_class=args.per_class,
        size=args.size,
        seed=args.seed,
        overwrite=True,
    )
    print(f"dataset: {data_dir}")

    _step(2, "check the dataset")
    from dataset_check.checker import check_entries
    from dataset_check.entries import iter_directory

    report = check_entries(iter_directory(data_dir), source=str(data_dir))
    print(report.to_text())
    if not report.ok:
        print("dogbreed demo: the dataset check failed; nothing was trained", file=sys.stderr)
        return 1

    _step(3, f"train {args.backbone} from scratch for {args.epochs} epochs (training_job/train.py)")
    for path in (model_dir, output_dir):
        _remove_tree(path)
    train_started = time.monotonic()
    code = run_training(
        [
            "--data-dir", str(data_dir),
            "--model-dir", str(model_dir),
            "--output-dir", str(output_dir),
            "--backbone", args.backbone,
            "--no-pretrained",
            "--epochs", str(args.epochs),
            "--image-size", str(args.image_size),
            "--batch-size", str(args.batch_size),
            "--learning-rate", str(args.learning_rate),
            "--workers", str(args.workers),
            "--seed", str(args.seed),
            "--check-data", "false",  # checked in step 2
            "--model-version", f"demo-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}",
        ],
        env=_local_env(),
    )  # fmt: skip
    if code != 0:
        print(f"dogbreed demo: training failed (exit code {code})", file=sys.stderr)
        return code
    train_seconds = time.monotonic() - train_started

    _step(4, "evaluation summary")
    print(render_summary(model_dir, train_seconds=train_seconds, total_seconds=time.monotonic() - started))
    return 0


def _local_env() -> dict[str, str]:
    """This environment without SageMaker's or a launcher's variables: the demo is the EC2 mode."""
    import os

    launcher = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    return {
        key: value for key, value in os.environ.items() if not key.startswith("SM_") and key not in launcher
    }


def _remove_tree(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)


def render_summary(model_dir: Path, *, train_seconds: float, total_seconds: float) -> str:
    from dogbreed_job import artifacts

    metrics = json.loads((model_dir / artifacts.METRICS_FILE).read_text())
    report_dir = model_dir / artifacts.REPORT_DIR
    per_class = metrics.get("per_class_acc", {})
    worst = min(per_class.items(), key=lambda item: item[1]) if per_class else None
    lines = [
        f"test accuracy   {metrics['test_acc']:.4f}  (top-5 {metrics['test_top5']:.4f}, "
        f"loss {metrics['test_loss']:.4f}, {metrics['samples']['test']} held-out images)",
        f"best epoch      {metrics['best_epoch']} of {metrics['epochs_run']} "
        f"(validation accuracy {metrics['val_acc']:.4f})",
    ]
    if worst is not None:
        lines.append(f"weakest breed   {worst[0]} ({worst[1]:.4f})")
    lines += [
        f"training time   {train_seconds:.0f} s (demo total {total_seconds:.0f} s)",
        f"model version   {metrics['model_version']}",
        "",
        f"model directory {model_dir}",
        f"model archive   {model_dir.parent / artifacts.ARCHIVE_NAME}",
        f"report          {report_dir / 'report.md'}",
        f"                {report_dir / 'training_curves.png'}",
        f"                {report_dir / 'confusion_matrix.png'}",
        "",
        "The rest of the pipeline runs on the local cloud (`make demo`, i.e. `dogbreed local demo`):",
        *[f"  - {step}" for step in PIPELINE_STEPS_TO_COME],
    ]
    return "\n".join(lines)
