"""CloudWatch embedded metric format (EMF): what CloudWatch Logs makes of a function's log lines.

On AWS a JSON log event with an `_aws.CloudWatchMetrics` member becomes metric data without any
PutMetricData call ("Specification: Embedded metric format" in the CloudWatch user guide): each
directive names a `Namespace`, `Dimensions` (a list of dimension sets, each a list of member names
whose values are root members) and `Metrics` (`Name`, optional `Unit`); the value of each metric is
the root member of that name, a number or an array of up to 100 numbers; `_aws.Timestamp` is epoch
milliseconds. A line that is not valid EMF stays an ordinary log line, as it does on AWS.

The local Lambda runtime reads each worker's stdout line by line (`LogLines`), passes every line on
to its own output and hands the metric data to the runtime's metric publisher.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from typing import IO, Any, Final

logger = logging.getLogger(__name__)

MAX_VALUES: Final = 100
MAX_DIMENSIONS: Final = 30  # per dimension set, as the specification allows

MetricSink = Callable[[str, dict[str, Any]], None]  # (namespace, PutMetricData datum)


def metric_data(line: str) -> list[tuple[str, dict[str, Any]]]:
    """The (namespace, datum) pairs an EMF log line stands for; [] for any other line."""
    if not line.startswith("{") or '"_aws"' not in line:
        return []
    try:
        event = json.loads(line)
        metadata = event["_aws"]
        timestamp = dt.datetime.fromtimestamp(int(metadata["Timestamp"]) / 1000, dt.UTC)
        directives = metadata["CloudWatchMetrics"]
        found = []
        for directive in directives:
            found.extend(_directive_data(event, directive, timestamp))
        return found
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return []


def _directive_data(
    event: dict[str, Any], directive: dict[str, Any], timestamp: dt.datetime
) -> list[tuple[str, dict[str, Any]]]:
    namespace = str(directive["Namespace"])
    dimension_sets = [
        [{"Name": name, "Value": str(event[name])} for name in names]
        for names in directive["Dimensions"]
        if len(names) <= MAX_DIMENSIONS and all(isinstance(event.get(name), str) for name in names)
    ]
    found = []
    for metric in directive["Metrics"]:
        name = str(metric["Name"])
        raw = event.get(name)
        values = raw if isinstance(raw, list) else [raw]
        numbers = [
            float(v) for v in values[:MAX_VALUES] if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        for dimensions in dimension_sets or [[]]:
            for value in numbers:
                datum = {"MetricName": name, "Dimensions": dimensions, "Value": value, "Timestamp": timestamp}
                if metric.get("Unit"):
                    datum["Unit"] = str(metric["Unit"])
                found.append((namespace, datum))
    return found


class LogLines:
    """Reads one worker's stdout in a daemon thread: each line goes on to `echo` (the runtime's own
    output), and each EMF line's metric data to `sink`. Ends at the stream's end (the worker exited)."""

    def __init__(self, stream: IO[bytes], echo: IO[str], sink: MetricSink, name: str) -> None:
        self._stream = stream
        self._echo = echo
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name=f"lambda-log-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._stream:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                try:
                    self._echo.write(line)
                    self._echo.flush()
                except (OSError, ValueError):
                    pass
                for namespace, datum in metric_data(line.strip()):
                    self._sink(namespace, datum)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
