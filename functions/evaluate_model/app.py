"""EvaluateModel: names a finished training job's final metrics for the pipeline's accuracy gate.

SageMaker reports `FinalMetricDataList` as a list of `{"MetricName", "Value"}`; picking one entry
by name needs a JSONPath filter, which Step Functions and local interpreters evaluate differently,
so this small function does it. Event: `{"training_job": <DescribeTrainingJob output>}`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()

# The gate's metric: train.py's final `test_acc=...` line (dogbreed_job.metrics.METRIC_NAMES).
GATE_METRIC = "test_acc"
# SageMaker's own hyperparameters are not part of the model's record.
_INTERNAL_PREFIXES = ("sagemaker_", "_tuning")


class MetricMissingError(Exception):
    """The training job finished without reporting the gate metric."""


def evaluate(training_job: dict[str, Any]) -> dict[str, Any]:
    name = str(training_job.get("TrainingJobName", "?"))
    metrics = {
        str(item["MetricName"]): float(item["Value"])
        for item in training_job.get("FinalMetricDataList") or []
        if "MetricName" in item and "Value" in item
    }
    if GATE_METRIC not in metrics:
        raise MetricMissingError(
            f"training job {name} reported no {GATE_METRIC} (metrics: {sorted(metrics) or 'none'}); "
            f"train.py must print the final '{GATE_METRIC}=...' line"
        )
    artifact = (training_job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not artifact:
        raise MetricMissingError(f"training job {name} has no model artifact")
    hyperparameters = {
        key: value
        for key, value in (training_job.get("HyperParameters") or {}).items()
        if not key.startswith(_INTERNAL_PREFIXES)
    }
    return {
        "training_job": name,
        "model_artifact": artifact,
        "hyperparameters": hyperparameters,
        "metrics": metrics,
        "test_acc": metrics[GATE_METRIC],
    }


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = evaluate(event["training_job"])
    logger.info(
        "model evaluated", extra={"training_job": result["training_job"], "metrics": result["metrics"]}
    )
    return result
