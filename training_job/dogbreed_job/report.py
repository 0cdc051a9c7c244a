"""The evaluation report in `report/`: training curves and a confusion matrix as PNG, and report.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CURVES_FILE = "training_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
REPORT_FILE = "report.md"
# Above this many classes the confusion matrix is drawn without tick labels (133 breeds).
MAX_LABELLED_CLASSES = 30


def write_report(
    report_dir: Path,
    *,
    classes: Sequence[str],
    history: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    report_dir.mkdir(parents=True, exist_ok=True)
    if history:
        plot_training_curves(history, report_dir / CURVES_FILE)
    confusion = metrics.get("confusion_matrix")
    if confusion is not None:
        plot_confusion_matrix(np.asarray(confusion), classes, report_dir / CONFUSION_FILE)
    (report_dir / REPORT_FILE).write_text(render_markdown(classes, history, metrics))
    return report_dir


def plot_training_curves(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [int(row["epoch"]) for row in history]
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_axis.plot(epochs, [float(row[key]) for row in history], marker="o", label=label)
    loss_axis.set(title="Loss (per sample)", xlabel="epoch", ylabel="cross-entropy")
    loss_axis.legend()
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        if all(key in row for row in history):
            acc_axis.plot(epochs, [float(row[key]) for row in history], marker="o", label=label)
    acc_axis.set(title="Accuracy", xlabel="epoch", ylabel="fraction correct", ylim=(0.0, 1.02))
    acc_axis.legend()
    for axis in (loss_axis, acc_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion_matrix(confusion: np.ndarray[Any, Any], classes: Sequence[str], path: Path) -> None:
    import matplotlib.pyplot as plt

    counts = confusion.astype(np.float64)
    row_totals = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    size = min(4 + 0.35 * len(classes), 20)
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(normalized, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="fraction of true class")
    axis.set(title="Confusion matrix (test split)", xlabel="predicted", ylabel="true")
    if len(classes) <= MAX_LABELLED_CLASSES:
        ticks = list(range(len(classes)))
        axis.set_xticks(ticks, labels=list(classes), rotation=90, fontsize=7)
        axis.set_yticks(ticks, labels=list(classes), fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def render_markdown(
    classes: Sequence[str], history: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]
) -> str:
    lines = ["# Evaluation report", ""]
    if "model_version" in metrics:
        lines += [f"Model version: `{metrics['model_version']}`", ""]
    summary = [
        (key, metrics[key]) for key in ("test_acc", "test_top5", "test_loss", "val_acc") if key in metrics
    ]
    if "best_epoch" in metrics:
        summary.append(("best_epoch", metrics["best_epoch"]))
    if summary:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in summary]
        lines.append("")
    if history:
        lines += ["## Epochs", "", "| epoch | train_loss | val_loss | val_acc |", "| --- | --- | --- | --- |"]
        for row in history:
            cells = [str(row["epoch"])] + [_fmt(row[key]) for key in ("train_loss", "val_loss", "val_acc")]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"![training curves]({CURVES_FILE})", ""]
    per_class = metrics.get("per_class_acc")
    if isinstance(per_class, Mapping) and per_class:
        worst = sorted(per_class.items(), key=lambda item: (item[1], item[0]))[:10]
        lines += ["## Lowest per-class test accuracy", "", "| breed | accuracy |", "| --- | --- |"]
        lines += [f"| {name} | {_fmt(value)} |" for name, value in worst]
        lines.append("")
    if "confusion_matrix" in metrics:
        lines += [f"![confusion matrix]({CONFUSION_FILE})", ""]
    lines.append(f"{len(classes)} classes.")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
