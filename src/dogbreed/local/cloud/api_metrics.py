"""The AWS/ApiGateway metrics API Gateway publishes for a REST API, published by the local HTTP API
into the local CloudWatch, as the API Gateway developer guide defines them ("Amazon API Gateway
dimensions and metrics"):

- `Count` (Count): one per request;
- `4XXError`, `5XXError` (Count): 1 for a request answered 4xx (5xx), else 0, so `Sum` counts them
  and `Average` is the error rate;
- `Latency` (Milliseconds): request received to response sent.

Every datum carries the `ApiName` (the RestApi's name) and `Stage` dimensions. API Gateway also
publishes per-API and, with detailed metrics, per-method series; they are left out here because the
local CloudWatch (moto) matches dimensions as a subset, so overlapping series would double count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

NAMESPACE: Final = "AWS/ApiGateway"


@dataclass(frozen=True)
class ApiRequestOutcome:
    status: int
    latency_ms: float
    timestamp: datetime


def request_metric_data(api_name: str, stage: str, outcome: ApiRequestOutcome) -> list[dict[str, Any]]:
    """The data points API Gateway records for one request."""
    dimensions = [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": stage}]

    def datum(name: str, value: float, unit: str) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": outcome.timestamp,
            "Value": value,
            "Unit": unit,
        }

    return [
        datum("Count", 1, "Count"),
        datum("4XXError", 1 if 400 <= outcome.status < 500 else 0, "Count"),
        datum("5XXError", 1 if outcome.status >= 500 else 0, "Count"),
        datum("Latency", outcome.latency_ms, "Milliseconds"),
    ]
