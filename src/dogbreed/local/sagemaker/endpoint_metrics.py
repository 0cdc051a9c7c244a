"""The CloudWatch metrics SageMaker publishes for endpoint variants (`AWS/SageMaker`, dimensions
EndpointName and VariantName): Invocations, InvocationsPerInstance, Invocation4XXErrors,
Invocation5XXErrors, ModelLatency and, for a serverless variant's cold starts, ModelSetupTime,
published every few seconds to the local CloudWatch (moto) so alarms and dashboards read them as on
AWS. The per-variant counters also give the autoscaler its rate."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from dogbreed.local.sagemaker._aws import ClientFactory

logger = logging.getLogger(__name__)

METRIC_NAMESPACE = "AWS/SageMaker"
_PUT_BATCH = 20


class VariantMetrics:
    """Counters flushed to CloudWatch, plus invocation timestamps for the autoscaler."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.invocations = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.latencies_us: list[float] = []
        self.setup_us: list[float] = []  # serverless cold starts (ModelSetupTime)
        self.recent: deque[float] = deque(maxlen=100_000)
        self.total_invocations = 0

    def record(self, status: int, latency_us: float | None) -> None:
        with self.lock:
            self.invocations += 1
            self.total_invocations += 1
            self.recent.append(time.monotonic())
            if 400 <= status < 500:
                self.errors_4xx += 1
            elif status >= 500:
                self.errors_5xx += 1
            if latency_us is not None:
                self.latencies_us.append(latency_us)

    def record_setup(self, seconds: float) -> None:
        with self.lock:
            self.setup_us.append(seconds * 1e6)

    def rate(self, window_seconds: float) -> int:
        cutoff = time.monotonic() - window_seconds
        with self.lock:
            return sum(1 for stamp in self.recent if stamp >= cutoff)

    def drain(self, endpoint: str, variant: str, instances: int) -> list[dict[str, Any]]:
        """The MetricData since the last drain (none when nothing was invoked)."""
        with self.lock:
            invocations, e4, e5, latencies, setups = (
                self.invocations,
                self.errors_4xx,
                self.errors_5xx,
                self.latencies_us,
                self.setup_us,
            )
            self.invocations = self.errors_4xx = self.errors_5xx = 0
            self.latencies_us = []
            self.setup_us = []
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
        data = [_statistics("ModelSetupTime", dims, setups)] if setups else []
        if not invocations:
            return data
        counts = {
            "Invocations": invocations,
            "InvocationsPerInstance": invocations / max(1, instances),
            "Invocation4XXErrors": e4,
            "Invocation5XXErrors": e5,
        }
        data += [
            {"MetricName": name, "Dimensions": dims, "Value": value, "Unit": "None"}
            for name, value in counts.items()
        ]
        if latencies:
            data.append(_statistics("ModelLatency", dims, latencies))
        return data


def _statistics(name: str, dims: list[dict[str, str]], values_us: list[float]) -> dict[str, Any]:
    """A statistic set in microseconds (SageMaker's unit for ModelLatency and ModelSetupTime)."""
    statistics = {
        "SampleCount": len(values_us),
        "Sum": sum(values_us),
        "Minimum": min(values_us),
        "Maximum": max(values_us),
    }
    return {"MetricName": name, "Dimensions": dims, "StatisticValues": statistics, "Unit": "Microseconds"}


def publish(variants: list[tuple[str, str, int, VariantMetrics]], clients: ClientFactory) -> None:
    """Every variant's metrics since the last call to CloudWatch; `variants` holds (endpoint, variant,
    instance count, metrics) of every serving variant."""
    data = [
        datum
        for endpoint, variant, instances, metrics in variants
        for datum in metrics.drain(endpoint, variant, instances)
    ]
    try:
        for start in range(0, len(data), _PUT_BATCH):
            clients("cloudwatch").put_metric_data(
                Namespace=METRIC_NAMESPACE, MetricData=data[start : start + _PUT_BATCH]
            )
    except Exception:
        logger.exception("cannot publish endpoint metrics")
