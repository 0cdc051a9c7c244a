"""MonitorDrift: on its EventBridge schedule, compares the last window of the endpoint's captured
traffic with the training baseline of each model version it saw and publishes the drift figures
(`model_monitor.metrics`); the stack's drift alarms read them.

Event: the scheduled event (its `time` is the window's end; a direct invoke without one uses now).
Answer: the run's summary (`model_monitor.monitor.MonitorResult.as_dict`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from model_monitor.monitor import run_monitor
from model_monitor.settings import MonitorSettings

logger = Logger()
tracer = Tracer()
SETTINGS = MonitorSettings.from_env()


@lru_cache(maxsize=1)
def clients() -> SimpleNamespace:
    config = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 5})
    return SimpleNamespace(
        s3=boto3.client("s3", config=config),
        sagemaker=boto3.client("sagemaker", config=config),
        cloudwatch=boto3.client("cloudwatch", config=config),
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
