"""The local Lambda service: functions run in worker processes, concurrently, each with its own
environment, as Lambda runs them in execution environments.

    runtime = LambdaRuntime(aws_environment={"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    runtime.configure([FunctionSpec(name="fn", code_dir=Path("functions"), handler="app.handler")])
    result = runtime.invoke("fn", b'{"x": 1}')      # InvokeResult(payload, function_error, ...)
    runtime.invoke_async("fn", b'{"x": 1}')          # queued; retries and destinations
    runtime.close()                                  # every worker stopped

- One worker process per concurrent invocation: an idle warm worker is reused, otherwise a new one
  starts (a cold start: the handler is imported). At most the function's concurrency runs at once;
  a synchronous invocation beyond it is throttled (`TooManyRequestsError`), an asynchronous one
  waits in the queue. The local cloud also caps processes per function (`max_workers_per_function`):
  past the cap an invocation waits for a worker instead of being throttled, which Lambda would not do.
- A worker's environment is the function's template environment, Lambda's defined runtime variables
  (AWS_LAMBDA_FUNCTION_NAME, _HANDLER, LAMBDA_TASK_ROOT, AWS_REGION, ...), the function's own
  credentials (`principals`) and the `aws_environment` the cloud injects (AWS_ENDPOINT_URL and
  friends). Nothing else of this process's environment reaches it.
- A handler that runs past the function's timeout: its worker is killed and the invocation fails with
  `Sandbox.Timedout` "Task timed out after N.NN seconds". The first invocation of a worker also gets
  Lambda's 10 s for the init phase.
- Idle workers stop after `idle_seconds`; every worker stops with `close()`, and by itself when this
  process dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dogbreed.local.lambda_runtime import errors
from dogbreed.local.lambda_runtime.async_invocations import AsyncEvent, AsyncInvoker
from dogbreed.local.lambda_runtime.concurrency import LambdaConcurrency
from dogbreed.local.lambda_runtime.destinations import Destinations
from dogbreed.local.lambda_runtime.function import LATEST, REGION, FunctionSpec, split_function_name
from dogbreed.local.lambda_runtime.invocation_record import InvocationResponse
from dogbreed.local.lambda_runtime.metrics import MILLISECONDS, LambdaMetrics
from dogbreed.local.lambda_runtime.principals import FunctionPrincipal, Principals
from dogbreed.local.lambda_runtime.worker import LAYER_PATHS_VARIABLE
from dogbreed.local.lambda_runtime.workers import (
    Worker,
    WorkerExitedError,
    WorkerPool,
    WorkerTimedOutError,
    log_stream_name,
)

logger = logging.getLogger(__name__)

# Lambda's init phase may take 10 s; a slower init is retried within the first invocation's timeout.
INIT_SECONDS = 10.0
# Worker processes per function on this machine (the local cap, below any reserved concurrency).
DEFAULT_MAX_WORKERS_PER_FUNCTION = 4
DEFAULT_MAX_STARTING_PER_FUNCTION = 2
DEFAULT_IDLE_SECONDS = 300.0
# Variables of this process a worker keeps: what starting a process needs, not configuration.
INHERITED_VARIABLES = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class InvokeResult(InvocationResponse):
    request_id: str = ""
    cold_start: bool = False

    def document(self) -> Any:
        """The response as JSON, or as text when the function returned something else."""
        try:
            return json.loads(self.payload)
        except ValueError:
            return self.payload.decode("utf-8", "replace")


class LambdaRuntime:
    def __init__(
        self,
        *,
        aws_environment: Mapping[str, str] | None = None,
        region: str = REGION,
        concurrency: LambdaConcurrency | None = None,
        metrics: LambdaMetrics | None = None,
        destinations: Destinations | None = None,
        worker_hooks: Sequence[str] = (),
        max_workers_per_function: int = DEFAULT_MAX_WORKERS_PER_FUNCTION,
        max_starting_per_function: int = DEFAULT_MAX_STARTING_PER_FUNCTION,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        async_backoff_scale: float = 1.0,
    ) -> None:
        self._aws_environment = dict(aws_environment or {})
        self._region = region
        self.concurrency = concurrency or LambdaConcurrency()
        self.metrics = metrics or LambdaMetrics(None)
        self._hooks = tuple(worker_hooks)
        self._max_workers = max_workers_per_function
        self._max_starting = max_starting_per_function
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._functions: dict[str, FunctionSpec] = {}
        self._pools: dict[str, WorkerPool] = {}
        self.principals = Principals()
        self.async_invoker = AsyncInvoker(
            execute=self._execute_async,
            function_of=self.function,
            concurrency=self.concurrency,
            metrics=self.metrics,
            destinations=destinations,
            backoff_scale=async_backoff_scale,
        )
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._stop_idle_workers, name="lambda-reaper", daemon=True)
        self._reaper.start()

    # --- deployment -----------------------------------------------------------------------------
    def configure(self, functions: Iterable[FunctionSpec]) -> None:
        """The deployed functions (a redeploy replaces the set): a changed function's warm workers
        retire, a removed function's stop."""
        wanted = {function.name: function for function in functions}
        with self._lock:
            removed = [self._pools.pop(name) for name in list(self._pools) if name not in wanted]
            for name, function in wanted.items():
                pool = self._pools.get(name)
                if pool is None:
                    pool = WorkerPool(
                        function,
                        self._start_worker,
                        max_workers=self._max_workers,
                        max_starting=self._max_starting,
                        init_seconds=INIT_SECONDS,
                    )
                    self._pools[name] = pool
                elif pool.function != function:
                    pool.retire(function)
            self._functions = wanted
        self.concurrency.configure(
            {f.name: f.reserved_concurrency for f in wanted.values() if f.reserved_concurrency is not None}
        )
        self.principals.replace([FunctionPrincipal.of(function) for function in wanted.values()])
        for pool in removed:
            pool.close()

    def function(self, name_or_arn: str) -> FunctionSpec | None:
        name, _qualifier = split_function_name(name_or_arn)
        with self._lock:
            return self._functions.get(name)

    def _require(self, name_or_arn: str) -> tuple[FunctionSpec, str | None]:
        name, qualifier = split_function_name(name_or_arn)
        function = self.function(name)
        if function is None:
            raise errors.FunctionNotFoundError(name_or_arn)
        return function, qualifier

    # --- invoking ---------------------------------------------------------------------------------
    def invoke(self, name_or_arn: str, payload: bytes, *, qualifier: str | None = None) -> InvokeResult:
        """A synchronous (RequestResponse) invocation; TooManyRequestsError when no concurrency is left."""
        function, arn_qualifier = self._require(name_or_arn)
        qualifier = qualifier or arn_qualifier
        if not self.concurrency.try_acquire(function.name):
            self.metrics.record(function.name, "Throttles", 1, qualifier=qualifier)
            reserved = self.concurrency.is_reserved(function.name)
            raise errors.TooManyRequestsError(
                "ReservedFunctionConcurrentInvocationLimitExceeded"
                if reserved
                else "ConcurrentInvocationLimitExceeded"
            )
        try:
            result = self._execute(function, payload, str(uuid.uuid4()), qualifier)
        finally:
            self.concurrency.release(function.name)
        if result.function_error is None and len(result.payload) > errors.SYNC_RESPONSE_LIMIT:
            return InvokeResult(errors.encode(errors.response_too_large_payload()), "Unhandled")
        return result

    def invoke_async(self, name_or_arn: str, payload: bytes, *, qualifier: str | None = None) -> str:
        """An asynchronous (Event) invocation: queued; returns its request id."""
        function, arn_qualifier = self._require(name_or_arn)
        return self.async_invoker.submit(function, payload, qualifier or arn_qualifier)

    def _execute_async(self, function: FunctionSpec, event: AsyncEvent) -> InvocationResponse:
        return self._execute(function, event.payload, event.request_id, event.qualifier)

    def _execute(
        self, function: FunctionSpec, payload: bytes, request_id: str, qualifier: str | None
    ) -> InvokeResult:
        """One invocation with its concurrency slot held: a worker, the handler, the metrics."""
        with self._lock:
            pool = self._pools.get(function.name)
        if pool is None:
            raise errors.FunctionNotFoundError(function.name)
        self.metrics.record(function.name, "ConcurrentExecutions", self.concurrency.in_use(function.name))
        worker = pool.checkout()
        cold = worker.invocations == 0
        healthy = False
        started = time.monotonic()
        invoked_arn = f"{function.function_arn}:{qualifier}" if qualifier else function.function_arn
        function_error: str | None = "Unhandled"
        try:
            if isinstance(worker.init_failure, Exception):
                raise worker.init_failure
            if worker.init_failure is not None:
                response = errors.encode(worker.init_failure)
            else:
                response, function_error = worker.invoke(
                    payload, request_id=request_id, invoked_arn=invoked_arn, timeout=function.timeout_seconds
                )
                healthy = True
        except WorkerTimedOutError:
            response = errors.encode(errors.timeout_payload(request_id, function.timeout_seconds))
        except WorkerExitedError as exited:
            response = errors.encode(errors.exit_payload(request_id, exited.returncode))
        finally:
            pool.checkin(worker, healthy=healthy)
        duration_ms = (time.monotonic() - started) * 1000
        self.metrics.record(function.name, "Invocations", 1, qualifier=qualifier)
        self.metrics.record(function.name, "Duration", duration_ms, MILLISECONDS, qualifier)
        if function_error:
            self.metrics.record(function.name, "Errors", 1, qualifier=qualifier)
            # Debug only: a handler's error text is the function's log, not the cloud's.
            logger.debug("%s %s: %s", function.name, request_id, response[:300].decode("utf-8", "replace"))
        return InvokeResult(response, function_error, LATEST, 200, request_id, cold)

    # --- workers ----------------------------------------------------------------------------------
    def worker_environment(self, function: FunctionSpec, stream: str) -> dict[str, str]:
        """What a worker of `function` sees in os.environ."""
        inherited = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
        defined = {
            "_HANDLER": function.handler,
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            LAYER_PATHS_VARIABLE: os.pathsep.join(str(path) for path in function.layer_dirs),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "TZ": ":UTC",
            **FunctionPrincipal.of(function).environment(),
        }
        # Lambda refuses to deploy a function that sets a reserved variable; the defined ones win here.
        return {**inherited, **self._aws_environment, **function.environment, **defined}

    def _start_worker(self, function: FunctionSpec) -> Worker:
        stream = log_stream_name()
        return Worker(
            function, self.worker_environment(function, stream), self._hooks, self.metrics.record_datum
        )

    def _stop_idle_workers(self) -> None:
        while not self._closed.wait(min(self._idle_seconds, 30.0)):
            with self._lock:
                pools = list(self._pools.values())
            for pool in pools:
                pool.stop_idle(self._idle_seconds)

    # --- status and shutdown ----------------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        with self._lock:
            pools = list(self._pools.values())
        return [pid for pool in pools for pid in pool.pids()]

    def status(self) -> dict[str, Any]:
        with self._lock:
            pools = dict(self._pools)
        return {
            "functions": {
                name: {**pool.counts(), "pids": pool.pids()} for name, pool in sorted(pools.items())
            },
            "async_queued": self.async_invoker.depths(),
            "async_outcomes": dict(self.async_invoker.outcomes),
            "principals": [
                {"access_key_id": p.access_key_id, "function": p.function_name, "role_arn": p.role_arn}
                for p in self.principals.all()
            ],
        }

    def close(self) -> None:
        self._closed.set()
        self.async_invoker.stop()
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            self._functions = {}
        for pool in pools:
            pool.close()
        with contextlib.suppress(Exception):
            self.metrics.close()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
