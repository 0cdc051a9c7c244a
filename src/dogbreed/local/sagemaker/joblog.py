"""A training job's log: one file and one CloudWatch Logs stream per host (`<job>/algo-N-<epoch>` in
`/aws/sagemaker/TrainingJobs`), MetricDefinitions regexes applied to every line as it arrives."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from dogbreed.local.background import Ticker
from dogbreed.local.sagemaker.container import MetricParser

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_MAX_EVENTS_PER_PUT = 5000

logger = logging.getLogger(__name__)

MetricListener = Callable[[str, float], None]


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    timestamp: float


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
        self._pumps: list[threading.Thread] = []
        self._flusher: Ticker | None = None
        if logs_client is not None:
            self._create_streams()
            self._flusher = Ticker(self.flush, 1.0, name=f"logs-{job_name}")

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

    def pump(self, host: str, proc: Any) -> None:
        """Read the process's stdout and stderr into this log, line by line, in background threads."""
        for stream, is_stderr in ((proc.stdout, False), (proc.stderr, True)):
            pump = threading.Thread(
                target=self._pump,
                args=(stream, host, is_stderr),
                name=f"log-{self.job_name}-{host}",
                daemon=True,
            )
            pump.start()
            self._pumps.append(pump)

    def _pump(self, stream: Any, host: str, is_stderr: bool) -> None:
        for line in iter(stream.readline, ""):
            self.line(host, line, stderr=is_stderr)
        stream.close()

    def join_pumps(self, timeout: float = 10.0) -> None:
        """After the processes exited: every line they wrote is in the log (and sent to CloudWatch)."""
        for pump in self._pumps:
            pump.join(timeout=timeout)
        self.flush()

    def stderr(self, host: str) -> list[str]:
        with self._lock:
            return list(self.stderr_tail[host])

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

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.stop(timeout=10)
        self.flush()
        with self._lock:
            for handle in self._handles.values():
                handle.close()
