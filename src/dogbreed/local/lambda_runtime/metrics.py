"""The AWS/Lambda metrics Lambda publishes, published into the local cloud's CloudWatch.

Names, units and meaning as the Lambda developer guide defines them ("Types of metrics for Lambda
functions"): `Invocations`, `Errors`, `Throttles` (Count, one datum per event: read them with Sum),
`Duration` (Milliseconds, the handler's time), `ConcurrentExecutions` (Count, the function's
invocations in flight when one starts: read it with Maximum), and for asynchronous invocations
`AsyncEventsReceived` (Count, events queued), `AsyncEventAge` (Milliseconds, queued to invoked,
growing with retries) and `AsyncEventsDropped` (Count, events discarded without a successful run,
whether or not a destination got them), plus `DestinationDeliveryFailures`. Each datum carries the
`FunctionName` dimension; an invocation through an alias or version also gets `FunctionName` +
`Resource` (`name:qualifier`), as Lambda reports per alias.

The functions' own metrics arrive the way CloudWatch Logs turns them into metric data on AWS: from
embedded-metric-format log lines (`embedded_metrics`), through `record_datum`, in their namespace.

Data points are buffered and sent with PutMetricData once a second (and on `flush`/`close`), one call
per namespace and 1,000 points; a failed send is logged and dropped, as a metric is never worth
failing an invocation for.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, Final

logger = logging.getLogger(__name__)

NAMESPACE: Final = "AWS/Lambda"
COUNT: Final = "Count"
MILLISECONDS: Final = "Milliseconds"
# PutMetricData accepts at most 1,000 data points per request.
BATCH: Final = 1000

PutMetricData = Callable[..., Any]


class LambdaMetrics:
    def __init__(self, put_metric_data: PutMetricData | None, *, interval_seconds: float = 1.0) -> None:
        """`put_metric_data`: a CloudWatch client's method (None: record nothing)."""
        self._put = put_metric_data
        self._buffer: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if put_metric_data is not None:
            self._thread = threading.Thread(
                target=self._run, args=(interval_seconds,), name="lambda-metrics", daemon=True
            )
            self._thread.start()

    def record(
        self, function: str, name: str, value: float, unit: str = COUNT, qualifier: str | None = None
    ) -> None:
        if self._put is None:
            return
        now = dt.datetime.now(dt.UTC)
        dimension_sets = [[{"Name": "FunctionName", "Value": function}]]
        if qualifier:
            dimension_sets.append(
                [*dimension_sets[0], {"Name": "Resource", "Value": f"{function}:{qualifier}"}]
            )
        for dimensions in dimension_sets:
            datum = {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": unit}
            self.record_datum(NAMESPACE, {**datum, "Timestamp": now})

    def record_datum(self, namespace: str, datum: dict[str, Any]) -> None:
        """One PutMetricData datum in `namespace` (a function's embedded metric, for one)."""
        if self._put is None:
            return
        with self._lock:
            self._buffer.append((namespace, datum))

    def flush(self) -> None:
        with self._send_lock:
            with self._lock:
                pending, self._buffer = self._buffer, []
            by_namespace: dict[str, list[dict[str, Any]]] = {}
            for namespace, datum in pending:
                by_namespace.setdefault(namespace, []).append(datum)
            for namespace, data in by_namespace.items():
                for start in range(0, len(data), BATCH):
                    try:
                        assert self._put is not None
                        self._put(Namespace=namespace, MetricData=data[start : start + BATCH])
                    except Exception as error:  # never fail an invocation for its metrics
                        logger.warning("%s metrics not published: %s", namespace, error)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._put is not None:
            self.flush()

    def _run(self, interval_seconds: float) -> None:
        while not self._stop.wait(interval_seconds):
            self.flush()
