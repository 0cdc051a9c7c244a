"""Buffered PutMetricData for the local cloud's own publishers (API Gateway's request metrics, the
services' periodic metrics, Lambda's metrics and the functions' embedded metrics): data points are
collected as they happen and sent to the local CloudWatch (moto) in batches, by a background flush
or on `flush()`. A failed send is logged and dropped: a metric is never worth failing a request for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from dogbreed.local.background import Ticker

logger = logging.getLogger(__name__)

# PutMetricData accepts at most 1,000 data points per request.
_BATCH = 1000

PutMetricData = Callable[..., Any]


class MetricBuffer:
    def __init__(self, put_metric_data: PutMetricData, *, interval_seconds: float = 1.0) -> None:
        """`put_metric_data`: a CloudWatch client's method. A daemon thread flushes every interval."""
        self._put = put_metric_data
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ticker = Ticker(self.flush, interval_seconds, name="metric-buffer")

    def add(self, namespace: str, datum: dict[str, Any]) -> None:
        with self._lock:
            self._pending.setdefault(namespace, []).append(datum)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for namespace, data in pending.items():
            for start in range(0, len(data), _BATCH):
                batch = data[start : start + _BATCH]
                try:
                    self._put(Namespace=namespace, MetricData=batch)
                except Exception:
                    logger.exception("cannot publish %d %s data points", len(batch), namespace)

    def close(self) -> None:
        self._ticker.stop(timeout=5)
        self.flush()
