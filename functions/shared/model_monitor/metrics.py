"""The monitor's CloudWatch metrics: one namespace, bounded dimensions (the endpoint, and the model
version: a handful of versions per endpoint, never a breed or an id). Each datum is published twice:
per endpoint and model version (the charts), and per endpoint alone (what the stack's alarms read,
as an alarm cannot name a version that does not exist yet)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from model_monitor.drift import DriftReport

NAMESPACE: Final = "DogBreed/ModelMonitor"
ENDPOINT_DIMENSION: Final = "EndpointName"
VERSION_DIMENSION: Final = "ModelVersion"
# Metric name -> unit. Drift figures are published only when the window had enough records.
METRICS: Final[dict[str, str]] = {
    "CapturedPredictions": "Count",
    "CorruptCaptureLines": "Count",
    "ClassDriftJS": "None",
    "ClassDriftPSI": "None",
    "ConfidenceDriftJS": "None",
    "ConfidenceDriftPSI": "None",
    "ImageStatsKS": "None",
    "ImageStatsDrifted": "Count",
}


def metric_data(report: DriftReport, *, endpoint: str, timestamp: datetime) -> list[dict[str, Any]]:
    values: dict[str, float | None] = {
        "CapturedPredictions": report.records,
        "CorruptCaptureLines": report.corrupt_lines + report.unreadable,
        "ClassDriftJS": report.class_js,
        "ClassDriftPSI": report.class_psi,
        "ConfidenceDriftJS": report.confidence_js,
        "ConfidenceDriftPSI": report.confidence_psi,
        "ImageStatsKS": report.image_ks_max,
        "ImageStatsDrifted": len(report.features_drifted) if report.image_ks else None,
    }
    endpoint_only = [{"Name": ENDPOINT_DIMENSION, "Value": endpoint}]
    with_version = [*endpoint_only, {"Name": VERSION_DIMENSION, "Value": report.model_version}]
    return [
        {
            "MetricName": name,
            "Dimensions": dimensions,
            "Value": float(value),
            "Unit": METRICS[name],
            "Timestamp": timestamp,
        }
        for name, value in values.items()
        if value is not None
        for dimensions in (with_version, endpoint_only)
    ]
