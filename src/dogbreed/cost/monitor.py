"""Monthly cost of the drift monitor at the template's schedule.

Runs per month = hours_per_month x 60 / MonitorScheduleMinutes. Each run is one Lambda invocation
(`monitor_seconds_per_run` at `monitor_memory_mb`), one ListObjectsV2 per hour the window touches
plus one GetObject per capture file (`capture_files_per_hour`), and one PutMetricData call. The
metrics are custom CloudWatch metrics billed per metric-month: every name in `model_monitor.metrics`
per endpoint, and again per endpoint and model version (`monitor_model_versions` live at a time);
the drift alarms are standard-resolution alarms billed per alarm-month. The captures themselves are
written by SageMaker (S3 PUTs: `capture_files_per_hour`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model_monitor.metrics import METRICS, NAMESPACE


@dataclass(frozen=True)
class MonitorCost:
    runs_per_month: float
    lambda_usd: float
    s3_usd: float
    metrics_usd: float
    alarms_usd: float

    @property
    def total_usd(self) -> float:
        return self.lambda_usd + self.s3_usd + self.metrics_usd + self.alarms_usd


def drift_alarm_count(template: dict[str, Any]) -> int:
    """The template's alarms on the monitor's namespace."""
    return sum(
        1
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::CloudWatch::Alarm"
        and resource.get("Properties", {}).get("Namespace") == NAMESPACE
    )


def monitor_monthly_cost(parameters: dict[str, str], prices: dict[str, Any], *, alarms: int) -> MonitorCost:
    assumptions = prices["assumptions"]
    hours = float(assumptions["hours_per_month"])
    runs = hours * 60 / float(parameters["MonitorScheduleMinutes"])
    gb_seconds = (
        runs * float(assumptions["monitor_seconds_per_run"]) * float(assumptions["monitor_memory_mb"]) / 1024
    )
    lambda_usd = gb_seconds * float(prices["lambda_per_gb_second"]) + runs / 1e6 * float(
        prices["lambda_per_million_requests"]
    )
    files = hours * float(assumptions["capture_files_per_hour"])
    hours_per_window = max(1.0, float(parameters["MonitorScheduleMinutes"]) / 60)
    gets = files + runs * (1 + hours_per_window)  # every capture file read once, plus the listings
    s3_usd = gets / 1000 * float(prices["s3_per_thousand_get"]) + files / 1000 * float(
        prices["s3_per_thousand_put"]
    )
    series = len(METRICS) * (1 + int(assumptions["monitor_model_versions"]))
    metrics_usd = series * float(prices["cloudwatch_metric_per_month"]) + runs / 1000 * float(
        prices["cloudwatch_put_metric_data_per_thousand"]
    )
    return MonitorCost(
        runs_per_month=runs,
        lambda_usd=lambda_usd,
        s3_usd=s3_usd,
        metrics_usd=metrics_usd,
        alarms_usd=alarms * float(prices["cloudwatch_alarm_per_month"]),
    )
