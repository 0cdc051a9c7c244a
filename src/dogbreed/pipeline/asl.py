"""The training pipeline's definition (statemachine/training_pipeline.asl.json) as data.

The definition is the one place that holds the tuning search space, the metric lines train.py prints
and the hyperparameters every job gets (`Start.Assign.config.training`); train.py, the docs, the cost
estimate and the tests read them from here instead of keeping copies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dogbreed import STATE_MACHINE_PATH


def load_definition(path: Path = STATE_MACHINE_PATH) -> dict[str, Any]:
    """The definition as written (DefinitionSubstitutions not applied)."""
    definition: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return definition


def training_config(definition: dict[str, Any] | None = None) -> dict[str, Any]:
    """The search space, metric definitions and static hyperparameters (`config.training`)."""
    definition = definition or load_definition()
    training: dict[str, Any] = definition["States"][definition["StartAt"]]["Assign"]["config"]["training"]
    return training


def task_states(definition: dict[str, Any] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    definition = definition or load_definition()
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            yield name, state


def tuned_hyperparameters(definition: dict[str, Any] | None = None) -> list[str]:
    """The names of the hyperparameters the tuning job searches over."""
    ranges = training_config(definition)["parameterRanges"]
    return [entry["Name"] for kind in ranges.values() for entry in kind]
