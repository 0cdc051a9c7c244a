"""MonitorDrift: on its EventBridge schedule, compares the last window of the endpoint's captured
traffic with the training baseline of each model version it saw and publishes the drift figures
(`model_monitor.metrics`); the stack's drift alarms read them.

Event: the scheduled event (its `time` is the window's end; a direct invoke without one uses now).
Answer: the run's summary (`model_monitor.monitor.MonitorResult.as_dict`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Annotated, Any

import aws_clients
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from model_monitor.drift import Thresholds
from model_monitor.monitor import MonitorConfig, run_monitor
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = Logger()
tracer = Tracer()
# The template passes the alarm thresholds; without them the functions' defaults are the drift report's.
DEFAULTS = Thresholds()

ENV_VARS: dict[str, str] = {
    "ENDPOINT_NAME": "endpoint_name",
    "CAPTURE_BUCKET": "capture_bucket",
    "CAPTURE_PREFIX": "capture_prefix",
    "WINDOW_MINUTES": "window_minutes",
    "MIN_RECORDS": "min_records",
    "CLASS_DRIFT_THRESHOLD": "class_drift_threshold",
    "CONFIDENCE_DRIFT_THRESHOLD": "confidence_drift_threshold",
    "KS_ALPHA": "ks_alpha",
}


class MonitorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_name: Annotated[str, Field(min_length=1, max_length=63)]
    capture_bucket: Annotated[str, Field(min_length=3, max_length=63)]
    capture_prefix: str = "data-capture"
    window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 60
    min_records: Annotated[int, Field(ge=1)] = DEFAULTS.min_records
    class_drift_threshold: Annotated[float, Field(gt=0, le=1)] = DEFAULTS.class_js
    confidence_drift_threshold: Annotated[float, Field(gt=0, le=1)] = DEFAULTS.confidence_js
    ks_alpha: Annotated[float, Field(gt=0, lt=1)] = DEFAULTS.ks_alpha

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        environ = os.environ if environ is None else environ
        values = {field: environ[var] for var, field in ENV_VARS.items() if environ.get(var, "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            names = {field: var for var, field in ENV_VARS.items()}
            problems = [
                f"{names.get(str(item['loc'][0]), item['loc'][0])}: {item['msg']}" for item in error.errors()
            ]
            raise RuntimeError("invalid monitor environment: " + "; ".join(problems)) from None

    def monitor_config(self) -> MonitorConfig:
        return MonitorConfig(
            endpoint_name=self.endpoint_name,
            capture_bucket=self.capture_bucket,
            capture_prefix=self.capture_prefix,
            window=timedelta(minutes=self.window_minutes),
            thresholds=Thresholds(
                class_js=self.class_drift_threshold,
                confidence_js=self.confidence_drift_threshold,
                ks_alpha=self.ks_alpha,
                min_records=self.min_records,
            ),
        )


# Parsed at cold start: a missing or malformed variable fails the init, naming it.
SETTINGS = MonitorSettings.from_env()


def clients() -> SimpleNamespace:
    return SimpleNamespace(
        s3=aws_clients.client("s3"),
        sagemaker=aws_clients.client("sagemaker"),
        cloudwatch=aws_clients.client("cloudwatch"),
    )


def window_end(event: dict[str, Any]) -> datetime:
    stamp = event.get("time") if isinstance(event, dict) else None
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).astimezone(UTC)
        except ValueError:
            logger.warning("event time is not ISO 8601; using now", extra={"time": stamp})
    return datetime.now(UTC)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = run_monitor(clients(), SETTINGS.monitor_config(), window_end(event))
    summary = result.as_dict()
    logger.info("drift checked", extra={"monitor": summary})
    return summary
