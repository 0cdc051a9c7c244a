"""The one Logger, Tracer and Metrics of both functions. Service name and namespace come from the
`POWERTOOLS_*` variables in the template's Globals.

Metric dimensions are bounded: `Source` is api|s3, `Reason` is the error class's stable default
code (a handful of values) and `EndpointName` the stack's endpoint, never a breed, an id, a key or a
free-form message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import MetricUnit

from prediction.models import Source


class AccountFreeFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log lines without `function_arn`: it names the account, and no log line about
    a refused request may (the function name stays)."""

    def serialize(self, log: LogRecord) -> str:
        log.pop("function_arn", None)
        return super().serialize(log)


logger = Logger(logger_formatter=AccountFreeFormatter())
tracer = Tracer()
metrics = Metrics()


def start_invocation(source: Source) -> None:
    """Dimension every metric of this invocation by its source. Starts from a clean set: a flush with
    no metrics (GET routes) leaves the previous invocation's dimensions behind."""
    metrics.clear_metrics()
    metrics.add_dimension(name="Source", value=source)


def record_prediction(*, latency_ms: float) -> None:
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PredictionLatency", unit=MetricUnit.Milliseconds, value=latency_ms)


def record_endpoint_latency(latency_ms: float) -> None:
    metrics.add_metric(name="EndpointLatency", unit=MetricUnit.Milliseconds, value=latency_ms)


def record_rejection(*, source: Source, reason: str) -> None:
    """A refused input (4xx / rejected object), emitted on its own so `Reason` only dimensions this metric."""
    with single_metric(
        name="Rejections",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={"service": metrics.service or "dogbreed", "Source": source, "Reason": reason},
    ):
        pass


@dataclass(frozen=True)
class ConfidenceWatch:
    """The model-behaviour metric: `LowConfidence` is 1 for an answer whose top probability is under
    `below` and 0 for any other, per endpoint, so its Average over a period is the share of
    low-confidence answers (the stack's LowConfidenceAnswersAlarm, one of the endpoint's rollback
    alarms) and its Sum their count."""

    endpoint_name: str
    below: float

    def record(self, top_probability: float) -> None:
        with single_metric(
            name="LowConfidence",
            unit=MetricUnit.Count,
            value=1.0 if top_probability < self.below else 0.0,
            namespace=metrics.namespace,
            default_dimensions={"service": metrics.service or "dogbreed", "EndpointName": self.endpoint_name},
        ):
            pass


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as elapsed:` ... `elapsed[0]` is the duration in milliseconds afterwards."""
    elapsed = [0.0]
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = (time.perf_counter() - start) * 1000.0
