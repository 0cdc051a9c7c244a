"""The report page: static HTML with every chart embedded as a PNG (matplotlib, no server, no
network; it opens from disk). Every figure carries `data-chart="<name>"` and every number a
`data-field`, so a test (or a script) can read the page back.

Charts: `training-curves` (loss and accuracy per epoch), `confusion-matrix` (test split),
`tuning-trials` (each tuned hyperparameter against the objective), `gate` (the candidate's test
accuracy beside production's and the threshold), `drift` (the monitor's hourly figures).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import dates
from matplotlib.figure import Figure

from dogbreed.report.collect import ReportData

CHARTS: tuple[str, ...] = ("training-curves", "confusion-matrix", "tuning-trials", "gate", "drift")
THRESHOLDS = {"ClassDriftJS": 0.1, "ConfidenceDriftJS": 0.1}


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _empty(figure: Figure, message: str) -> None:
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center")


def training_curves(data: ReportData) -> Figure:
    history = data.metrics.get("history", [])
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [row["epoch"] for row in history]
    for key in ("train_loss", "val_loss"):
        loss.plot(epochs, [row[key] for row in history], marker="o", label=key)
    for key in ("train_acc", "val_acc"):
        accuracy.plot(epochs, [row[key] for row in history], marker="o", label=key)
    loss.set_xlabel("epoch"), loss.set_title("loss"), loss.legend()
    accuracy.set_xlabel("epoch"), accuracy.set_title("accuracy"), accuracy.legend()
    return figure


def confusion_matrix(data: ReportData) -> Figure:
    matrix = data.metrics.get("confusion_matrix") or []
    figure = plt.figure(figsize=(5, 4.5))
    if not matrix:
        _empty(figure, "no confusion matrix in metrics.json")
        return figure
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xlabel("predicted class"), axes.set_ylabel("true class"), axes.set_title("test split")
    return figure


def tuning_trials(data: ReportData) -> Figure:
    trials = [trial for trial in data.trials if trial["objective"] is not None]
    names = sorted({name for trial in trials for name in trial["hyperparameters"]})
    if not trials or not names:
        figure = plt.figure(figsize=(5, 2))
        _empty(figure, "no tuning trials recorded for this run")
        return figure
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        xs = [float(trial["hyperparameters"][name]) for trial in trials if name in trial["hyperparameters"]]
        ys = [float(trial["objective"]) for trial in trials if name in trial["hyperparameters"]]
        axis.scatter(xs, ys)
        axis.set_xlabel(name)
        axis.tick_params(axis="x", labelrotation=30)
        axis.set_ylabel(trials[0]["objective_name"] or "objective")
    return figure


def gate(data: ReportData) -> Figure:
    decision = data.run.get("gate") or {}
    figure = plt.figure(figsize=(5, 3))
    axes = figure.add_subplot()
    candidate = float(data.metrics.get("test_acc", 0.0))
    production = float(decision.get("production_test_acc") or 0.0)
    axes.bar(["candidate", "production"], [candidate, production], color=["tab:blue", "tab:gray"])
    if decision.get("threshold") is not None:
        axes.axhline(float(decision["threshold"]), color="tab:red", linestyle="--", label="threshold")
        axes.legend()
    axes.set_ylim(0, 1)
    axes.set_ylabel("test accuracy")
    passed = decision.get("passed")
    verdict = "passed" if passed is True else "failed" if passed is False else "no gate recorded"
    axes.set_title(f"gate: {verdict}")
    return figure


def drift(data: ReportData) -> Figure:
    shown = {name: points for name, points in data.drift.items() if points and name != "CapturedPredictions"}
    figure = plt.figure(figsize=(9, 3))
    if not shown:
        _empty(figure, "no drift figures yet (the monitor publishes them once traffic is captured)")
        return figure
    axes = figure.add_subplot()
    for name, points in shown.items():
        axes.plot(dates.date2num([t for t, _ in points]), [v for _, v in points], marker="o", label=name)
    for name, threshold in THRESHOLDS.items():
        if name in shown:
            axes.axhline(threshold, linestyle="--", color="tab:red", linewidth=0.8)
    axes.xaxis_date()
    times = [dates.date2num(t) for points in shown.values() for t, _ in points]
    axes.set_xlim(min(times) - 1 / 24, max(times) + 1 / 24)  # at least two hours wide
    axes.set_ylabel("hourly maximum"), axes.legend()
    figure.autofmt_xdate()
    return figure


DRAWERS: dict[str, tuple[Callable[[ReportData], Figure], str]] = {
    "training-curves": (training_curves, "Training curves (metrics.json history)"),
    "confusion-matrix": (confusion_matrix, "Confusion matrix on the test split"),
    "tuning-trials": (tuning_trials, "Tuning trials: each tuned hyperparameter against the objective"),
    "gate": (gate, "Gate decision: the candidate against production"),
    "drift": (drift, "Drift over time (DogBreed/ModelMonitor, this model version)"),
}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


def _row(label: str, field: str, value: Any) -> str:
    return f'<tr><th>{escape(label)}</th><td data-field="{escape(field)}">{_value(value)}</td></tr>'


def render_html(data: ReportData) -> str:
    metrics, decision = data.metrics, data.run.get("gate") or {}
    rows = [
        _row("model version", "model_version", data.model_version),
        _row("test accuracy", "test_acc", float(metrics.get("test_acc", 0.0))),
        _row("test top-5", "test_top5", float(metrics.get("test_top5", 0.0))),
        _row("test loss", "test_loss", float(metrics.get("test_loss", 0.0))),
        _row("validation accuracy", "val_acc", float(metrics.get("val_acc", 0.0))),
        _row("best epoch", "best_epoch", metrics.get("best_epoch", "")),
        _row("registry status", "approval_status", data.registry.get("approval_status", "")),
        _row(
            "registry test accuracy",
            "registry_test_acc",
            data.registry.get("metadata", {}).get("test_acc", ""),
        ),
        _row("model package", "package_arn", data.registry.get("package_arn", "")),
        _row("gate", "gate_passed", decision.get("passed", "")),
        _row("production version", "production_version", decision.get("production_version", "")),
        _row("production test accuracy", "production_test_acc", decision.get("production_test_acc", "")),
        _row("tuning trials", "trials", len(data.trials)),
    ]
    figures = []
    for name in CHARTS:
        draw, caption = DRAWERS[name]
        figures.append(
            f'<figure class="chart" id="chart-{name}" data-chart="{name}">'
            f'<img alt="{escape(caption)}" src="data:image/png;base64,{_png(draw(data))}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    trial_rows = "".join(
        f"<tr><td>{escape(t['name'])}</td><td>{escape(t['status'])}</td>"
        f"<td>{escape(', '.join(f'{k}={v}' for k, v in sorted(t['hyperparameters'].items())))}</td>"
        f'<td data-field="objective">{_value(t["objective"])}</td></tr>'
        for t in data.trials
    )
    title = f"dogbreed model {escape(data.model_version)}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:sans-serif;margin:2em;max-width:1000px}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "figure{margin:2em 0}img{max-width:100%}</style></head><body>"
        f"<h1>{title}</h1>"
        f'<table id="summary">{"".join(rows)}</table>'
        f"{''.join(figures)}"
        f'<h2>Tuning trials</h2><table id="trials"><tr><th>job</th><th>status</th>'
        f"<th>hyperparameters</th><th>objective</th></tr>{trial_rows}</table>"
        "</body></html>\n"
    )
