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

Data points go through a `MetricBuffer` (sent with PutMetricData once a second and on `flush`/`close`,
in batches of 1,000 per namespace; a failed send is logged and dropped, as a metric is never worth
failing an invocation for).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from dogbreed.local.metric_buffer import MetricBuffer, PutMetricData

NAMESPACE: Final = "AWS/Lambda"
COUNT: Final = "Count"
MILLISECONDS: Final = "Milliseconds"


class LambdaMetrics:
    def __init__(self, put_metric_data: PutMetricData | None, *, interval_seconds: float = 1.0) -> None:
        """`put_metric_data`: a CloudWatch client's method (None: record nothing)."""
        self._buffer = (
            MetricBuffer(put_metric_data, interval_seconds=interval_seconds)
            if put_metric_data is not None
            else None
        )

    def record(
        self, function: str, name: str, value: float, unit: str = COUNT, qualifier: str | None = None
    ) -> None:
        if self._buffer is None:
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
        if self._buffer is not None:
            self._buffer.add(namespace, datum)

    def flush(self) -> None:
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        if self._buffer is not None:
            self._buffer.close()
