"""Copy the training job's metric regexes (training_job/dogbreed_job/metrics.py, the one definition)
into the state machine's MetricDefinitions (tuning and final training). ASL is JSON, so it holds a
copy; tests/unit/test_pipeline_asl.py fails until this is run after the regexes change.

    .venv/bin/python statemachine/sync_metric_definitions.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ASL_PATH = ROOT / "statemachine" / "training_pipeline.asl.json"
sys.path.insert(0, str(ROOT / "training_job"))

from dogbreed_job.metrics import METRIC_DEFINITIONS  # noqa: E402


def sync(definition: dict[str, Any]) -> int:
    changed = 0
    for state in definition["States"].values():
        parameters = state.get("Parameters", {})
        specs = [parameters.get("AlgorithmSpecification")]
        specs.append(parameters.get("TrainingJobDefinition", {}).get("AlgorithmSpecification"))
        for spec in specs:
            if spec is not None and spec.get("MetricDefinitions") != METRIC_DEFINITIONS:
                spec["MetricDefinitions"] = METRIC_DEFINITIONS
                changed += 1
    return changed


if __name__ == "__main__":
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    count = sync(asl)
    ASL_PATH.write_text(json.dumps(asl, indent=2) + "\n", encoding="utf-8")
    print(f"updated {count} MetricDefinitions in {ASL_PATH.relative_to(ROOT)}")
