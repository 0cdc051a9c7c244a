"""A training job's log: one file and one CloudWatch Logs stream per host (`<job>/algo-N-<epoch>` in
`/aws/sagemaker/TrainingJobs`), MetricDefinitions regexes applied to every line as it arrives."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_MAX_EVENTS_PER_PUT = 5000

logger = logging.getLogger(__name__)

MetricListener = Callable[[str, float], None]


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    timestamp: float


class MetricParser:
    """SageMaker's MetricDefinitions semantics: the first capture group of every match is a value."""

    def __init__(self, definitions: list[dict[str, str]]) -> None:
        self._regexes = [(item["Name"], re.compile(item["Regex"])) for item in definitions]

    def parse_line(self, line: str) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = []
        for name, regex in self._regexes:
            for match in regex.finditer(line):
                raw = match.group(1) if regex.groups else match.group(0)
                try:
                    found.append((name, float(raw)))
                except (TypeError, ValueError):
                    continue
        return found


class JobLog:
    def __init__(
        self,
        *,
        job_name: str,
        hosts: list[str],
        log_dir: Path,
        metric_definitions: list[dict[str, str]],
        logs_client: Any | None,
        listener: MetricListener | None = None,
    ) -> None:
        self.job_name = job_name
        self._lock = threading.Lock()
        self._parser = MetricParser(metric_definitions)
        self._listener = listener
        self.metrics: list[MetricPoint] = []
        self.stderr_tail: dict[str, deque[str]] = {host: deque(maxlen=200) for host in hosts}
        log_dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, Path] = {host: log_dir / f"{host}.log" for host in hosts}
        self._handles: dict[str, TextIO] = {host: path.open("a") for host, path in self.files.items()}
        stamp = int(time.time())
        self.streams = {host: f"{job_name}/{host}-{stamp}" for host in hosts}
        self._logs = logs_client
        self._pending: dict[str, list[dict[str, Any]]] = {host: [] for host in hosts}
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        if logs_client is not None:
            self._create_streams()
            self._flusher = threading.Thread(target=self._flush_loop, name=f"logs-{job_name}", daemon=True)
            self._flusher.start()

    def _create_streams(self) -> None:
        assert self._logs is not None
        try:
            self._logs.create_log_group(logGroupName=LOG_GROUP)
        except self._logs.exceptions.ResourceAlreadyExistsException:
            pass
        except Exception:  # CloudWatch is best effort: the file log is authoritative
            logger.exception("cannot create log group %s", LOG_GROUP)
            self._logs = None
            return
        for stream in self.streams.values():
            try:
                self._logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
            except Exception:
                logger.exception("cannot create log stream %s", stream)

    def line(self, host: str, text: str, *, stderr: bool = False) -> None:
        text = text.rstrip("\n")
        now = time.time()
        with self._lock:
            handle = self._handles.get(host)
            if handle is not None and not handle.closed:
                handle.write(text + "\n")
                handle.flush()
            if stderr:
                self.stderr_tail[host].append(text)
            self._pending[host].append({"timestamp": int(now * 1000), "message": text or " "})
        for name, value in self._parser.parse_line(text):
            with self._lock:
                self.metrics.append(MetricPoint(name, value, now))
            if self._listener is not None:
                try:
                    self._listener(name, value)
                except Exception:
                    logger.exception("metric listener failed")

    def final_metrics(self) -> dict[str, MetricPoint]:
        with self._lock:
            return {point.name: point for point in self.metrics}

    def flush(self) -> None:
        if self._logs is None:
            return
        with self._lock:
            batches = {host: events for host, events in self._pending.items() if events}
            self._pending = {host: [] for host in self._pending}
        for host, events in batches.items():
            for start in range(0, len(events), _MAX_EVENTS_PER_PUT):
                try:
                    self._logs.put_log_events(
                        logGroupName=LOG_GROUP,
                        logStreamName=self.streams[host],
                        logEvents=events[start : start + _MAX_EVENTS_PER_PUT],
                    )
                except Exception:
                    logger.exception("cannot publish log events to %s", self.streams[host])

    def _flush_loop(self) -> None:
        while not self._closed.wait(1.0):
            self.flush()

    def close(self) -> None:
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        self.flush()
        with self._lock:
            for handle in self._handles.values():
                handle.close()


def failure_message(lines: list[str]) -> str:
    """The script's last error: the exception line(s) closing the last traceback, else the last line."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        return ""
    start = max(
        (i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")),
        default=None,
    )
    if start is not None:
        # Frames are indented; the exception lines that follow the last frame are not.
        tail: list[str] = []
        for line in reversed(lines[start + 1 :]):
            if line.startswith((" ", "\t")):
                break
            tail.append(line)
        if tail:
            return "\n".join(list(reversed(tail))[:5])
    return lines[-1]
