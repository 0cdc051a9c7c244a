"""The one definition of the training job's metric lines and the regexes that parse them.

SageMaker (`MetricDefinitions` in the state machine's tuning and training requests) and the local
SageMaker backend parse the job log with these regexes. The state machine's copy is checked
against this module by a test.
"""

from __future__ import annotations

import re

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

# Order matters only for readability; each name is matched independently.
METRIC_NAMES: tuple[str, ...] = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc", "test_top5")
OBJECTIVE_METRIC = "val_acc"
OBJECTIVE_TYPE = "Maximize"

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name, "Regex": rf"\b{name}={_NUMBER}"} for name in METRIC_NAMES
]


def format_metrics_line(**values: float | int) -> str:
    """`epoch=3 train_loss=0.810000 val_loss=0.520000 val_acc=0.874000` (ints stay ints)."""
    parts = []
    for key, value in values.items():
        parts.append(f"{key}={value}" if isinstance(value, int) else f"{key}={value:.6f}")
    return " ".join(parts)


def parse_metrics(log_text: str) -> dict[str, float]:
    """Last value of every defined metric found in a log (what SageMaker reports as final)."""
    found: dict[str, float] = {}
    for definition in METRIC_DEFINITIONS:
        matches = re.findall(definition["Regex"], log_text)
        if matches:
            found[definition["Name"]] = float(matches[-1])
    return found
