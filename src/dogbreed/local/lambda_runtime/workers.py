"""The parent's side of execution environments: one `Worker` per process, and a `WorkerPool` per
function that hands out warm workers and starts new ones (cold starts) while invocations wait.

How the pool scales: an invocation that finds no idle worker asks for one more to be started (up to
the cap on processes) and waits in line; it takes whichever comes first, a worker that finishes its
invocation or one that finishes its init. At most `max_starting` workers of a function initialise at
once: on a laptop, twelve handlers importing Powertools, pydantic and boto3 at the same moment take
far longer each than two at a time, and a burst is served sooner by the first warm workers than by
cold starts that all finish late. Lambda itself gives every concurrent invocation an environment of
its own at once; the difference shows only while a burst ramps up (docs/local-cloud.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from dogbreed.local.lambda_runtime import worker as worker_program
from dogbreed.local.lambda_runtime.embedded_metrics import LogLines, MetricSink
from dogbreed.local.lambda_runtime.function import FunctionSpec

logger = logging.getLogger(__name__)

# The package root the worker imports its own program from (removed from its path before the handler).
PACKAGE_ROOT = str(Path(worker_program.__file__).resolve().parents[3])
STOP_GRACE_SECONDS = 2.0


class WorkerTimedOutError(Exception):
    pass


class WorkerExitedError(Exception):
    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"the worker exited ({returncode})")
        self.returncode = returncode


class Worker:
    """One running execution environment of `function` (a child process in this process's group)."""

    def __init__(
        self,
        function: FunctionSpec,
        environment: Mapping[str, str],
        hooks: Sequence[str],
        metric_sink: MetricSink | None = None,
    ) -> None:
        """`metric_sink` gets the metric data of the worker's embedded-metric-format log lines (its
        stdout is then read line by line and passed on to this process's stdout)."""
        self.function = function
        ours, theirs = socket.socketpair()
        arguments = [PACKAGE_ROOT, str(theirs.fileno()), json.dumps(list(hooks))]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-u", "-c", worker_program.BOOTSTRAP, *arguments],
                env=dict(environment),
                cwd=function.code_dir,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if metric_sink is not None else None,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._connection = Connection(ours.detach())
        self._log_lines: LogLines | None = None
        if metric_sink is not None and self.process.stdout is not None:
            self._log_lines = LogLines(self.process.stdout, sys.stdout, metric_sink, function.name)
        self.init_ms: float | None = None
        # What went wrong in the init phase, reported by the first invocation: the runtime's error
        # payload, or the exception the wait for the init ended with.
        self.init_failure: dict[str, Any] | Exception | None = None
        self.invocations = 0
        self.last_used = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def initialise(self, timeout: float) -> None:
        """Wait for the init phase; a failure is kept in `init_failure`."""
        try:
            message = self._receive_header(timeout)
        except (WorkerTimedOutError, WorkerExitedError) as failure:
            self.init_failure = failure
            return
        if "init_error" in message:
            self.init_failure = dict(message["init_error"])
        else:
            self.init_ms = float(message["init_ms"])

    def invoke(
        self, payload: bytes, *, request_id: str, invoked_arn: str, timeout: float
    ) -> tuple[bytes, str | None]:
        """(response, FunctionError); WorkerTimedOutError or WorkerExitedError when it did not answer."""
        self.invocations += 1
        deadline_ms = int((time.time() + timeout) * 1000)
        header = {"request_id": request_id, "invoked_function_arn": invoked_arn, "deadline_ms": deadline_ms}
        try:
            self._connection.send_bytes(json.dumps(header).encode("utf-8"))
            self._connection.send_bytes(payload)
        except OSError:
            self.kill()
            raise WorkerExitedError(self.process.returncode) from None
        answer = self._receive_header(timeout)
        body = self._connection.recv_bytes()
        self.last_used = time.monotonic()
        return body, answer.get("function_error")

    def _receive_header(self, timeout: float) -> dict[str, Any]:
        try:
            if not self._connection.poll(timeout):
                raise WorkerTimedOutError()
            message: dict[str, Any] = json.loads(self._connection.recv_bytes())
        except (EOFError, OSError):
            self.kill()
            raise WorkerExitedError(self.process.returncode) from None
        return message

    def stop(self) -> None:
        """End of the socket: an idle worker exits by itself; one that does not is killed."""
        with contextlib.suppress(OSError):
            self._connection.close()
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self._connection.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class _Claim:
    """One invocation waiting for a worker; claims are served first come, first served."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.worker: Worker | None = None
        self.error: Exception | None = None


class WorkerPool:
    """One function's workers (see the module docstring): `checkout` hands out an idle worker or
    waits in line for one, starting more in the background; `checkin` keeps a healthy one warm and
    hands it to the longest-waiting invocation first (a free-for-all would let some wait many turns)."""

    def __init__(
        self,
        function: FunctionSpec,
        start: Callable[[FunctionSpec], Worker],
        *,
        max_workers: int,
        max_starting: int,
        init_seconds: float,
    ) -> None:
        self.function = function
        self._start = start
        self._max_workers = max_workers
        self._max_starting = max_starting
        self._init_seconds = init_seconds
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._launched: set[Worker] = set()  # started, still in their init phase
        self._starting = 0
        self._claims: deque[_Claim] = deque()
        self._closed = False

    def checkout(self) -> Worker:
        """The most recently used idle worker, or the next one free or started, in arrival order."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.function.name} is no longer deployed here")
            if self._idle and not self._claims:
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker
            claim = _Claim()
            self._claims.append(claim)
            self._start_more()
        claim.ready.wait()
        if claim.error is not None:
            raise claim.error
        assert claim.worker is not None
        return claim.worker

    def _start_more(self) -> None:
        """Start workers for waiting claims, within the caps (lock held)."""
        while (
            self._starting < min(len(self._claims), self._max_starting)
            and len(self._busy) + len(self._idle) + self._starting < self._max_workers
        ):
            self._starting += 1
            threading.Thread(target=self._spawn, name=f"start-{self.function.name}", daemon=True).start()

    def _hand_out(self, worker: Worker) -> None:
        """To the longest-waiting claim, or to the idle list (lock held)."""
        if self._claims:
            claim = self._claims.popleft()
            self._busy.add(worker)
            claim.worker = worker
            claim.ready.set()
        else:
            self._idle.append(worker)

    def _spawn(self) -> None:
        function = self.function
        worker: Worker | None = None
        error: Exception | None = None
        try:
            worker = self._start(function)
            with self._lock:
                self._launched.add(worker)
            if self._closed:
                worker.kill()
            worker.initialise(self._init_seconds + function.timeout_seconds)
        except Exception as failure:
            logger.exception("could not start a worker of %s", function.name)
            error = RuntimeError(f"cannot start a worker of {function.name}: {failure}")
        with self._lock:
            self._starting -= 1
            if worker is not None:
                self._launched.discard(worker)
            keep = worker is not None and not self._closed and worker.function == self.function
            if keep and worker is not None:
                self._hand_out(worker)
                if worker.init_ms is not None:
                    logger.info(
                        "%s: worker %d ready (init %.0f ms)", function.name, worker.pid, worker.init_ms
                    )
            elif error is not None and self._claims:
                claim = self._claims.popleft()
                claim.error = error
                claim.ready.set()
            self._start_more()
        if worker is not None and not keep:
            worker.kill()

    def checkin(self, worker: Worker, *, healthy: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            keep = healthy and not self._closed and worker.function == self.function
            if keep:
                self._hand_out(worker)
            else:
                self._start_more()
        if not keep and healthy:
            worker.stop()
        elif not keep:
            worker.kill()

    def retire(self, function: FunctionSpec) -> None:
        """A redeploy changed the function: idle workers stop now, busy and starting ones when done."""
        with self._lock:
            self.function = function
            idle, self._idle = self._idle, []
            self._start_more()
        for worker in idle:
            worker.stop()

    def stop_idle(self, idle_seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [worker for worker in self._idle if now - worker.last_used > idle_seconds]
            self._idle = [worker for worker in self._idle if worker not in expired]
        for worker in expired:
            worker.stop()

    def close(self) -> None:
        """Stop every worker, idle, busy or starting (a busy one's caller sees it exit)."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy, *self._launched]
            self._idle, self._busy = [], set()
            claims, self._claims = list(self._claims), deque()
        for claim in claims:
            claim.error = RuntimeError(f"{self.function.name} is no longer deployed here")
            claim.ready.set()
        for worker in workers:
            worker.kill()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "idle": len(self._idle),
                "busy": len(self._busy),
                "starting": self._starting,
                "waiting": len(self._claims),
            }

    def pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in [*self._idle, *self._busy, *self._launched]]


def log_stream_name() -> str:
    """Lambda's stream name for a new execution environment: `YYYY/MM/DD/[$LATEST]<32 hex>`."""
    return time.strftime("%Y/%m/%d", time.gmtime()) + "/[$LATEST]" + uuid.uuid4().hex
