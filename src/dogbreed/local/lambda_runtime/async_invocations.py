"""Asynchronous invocation as Lambda does it (developer guide, "Asynchronous invocation"):

- the event goes to the function's internal queue (unbounded) and the caller gets 202 at once;
- it runs when a concurrency slot is free: at most the function's reserved concurrency (or the
  account's unreserved pool) at once. Waiting for a slot is not a failure: throttled events stay
  queued until `MaximumEventAgeInSeconds`;
- a function error (the handler's, or the runtime's: timeouts, crashes) is retried
  `MaximumRetryAttempts` times, one minute before the second attempt and two before the third; the
  local cloud multiplies these waits by a scale it is given (e.g. 0.01: 0.6 s and 1.2 s);
- an event whose retries are spent (`RetriesExhausted`) or that outlived its maximum age
  (`EventAgeExceeded`) is dropped, after its invocation record went to the OnFailure destination if
  there is one; a success goes to the OnSuccess destination if there is one;
- a function with reserved concurrency 0 sends new events to the OnFailure destination at once,
  without retries.

Each queue is drained by at most as many threads as the function may run at once.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from dogbreed.local.lambda_runtime.concurrency import LambdaConcurrency
from dogbreed.local.lambda_runtime.destinations import Destinations
from dogbreed.local.lambda_runtime.function import FunctionSpec
from dogbreed.local.lambda_runtime.invocation_record import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    SUCCESS,
    InvocationResponse,
    invocation_record,
)
from dogbreed.local.lambda_runtime.metrics import MILLISECONDS, LambdaMetrics

logger = logging.getLogger(__name__)

# Lambda's waits before the retries of a function error (seconds), before any local scaling.
RETRY_DELAYS_SECONDS = (60.0, 120.0)
# A queue's idle drain thread ends after this long, so a quiet function holds no thread.
IDLE_THREAD_SECONDS = 5.0


@dataclass
class AsyncEvent:
    function: str
    payload: bytes
    qualifier: str | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received: float = field(default_factory=time.monotonic)
    attempts: int = 0
    response: InvocationResponse | None = None


# Runs one attempt with the slot held; returns what the function answered.
Execute = Callable[[FunctionSpec, AsyncEvent], InvocationResponse]


class AsyncQueue:
    """One function's queue: a heap of (not before, order, event), drained by threads that each hold
    a concurrency slot while they run an event. An event taken off the heap still counts as queued
    until its thread holds a slot (or gives the event up)."""

    def __init__(self, function: str, invoker: AsyncInvoker) -> None:
        self.function = function
        self._invoker = invoker
        self._ready = threading.Condition()
        self._heap: list[tuple[float, int, AsyncEvent]] = []
        self._order = itertools.count()
        self._threads = 0
        self._idle = 0
        self._awaiting_slot = 0

    def put(self, event: AsyncEvent, delay: float = 0.0) -> None:
        with self._ready:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), event))
            self._ready.notify()
            # Another thread only when the queue holds more than the idle ones will take.
            limit = self._invoker.concurrency.limit(self.function)
            if len(self._heap) > self._idle and self._threads < limit:
                self._threads += 1
                threading.Thread(target=self._drain, name=f"async-{self.function}", daemon=True).start()

    def depth(self) -> int:
        with self._ready:
            return len(self._heap) + self._awaiting_slot

    def _next(self) -> AsyncEvent | None:
        idle_since = time.monotonic()
        stop = self._invoker.stopped
        with self._ready:
            self._idle += 1
            try:
                while not stop.is_set():
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        self._awaiting_slot += 1
                        return heapq.heappop(self._heap)[2]
                    if not self._heap and now - idle_since > IDLE_THREAD_SECONDS:
                        break
                    wait = self._heap[0][0] - now if self._heap else IDLE_THREAD_SECONDS
                    self._ready.wait(min(max(wait, 0.01), 1.0))
                self._threads -= 1
                return None
            finally:
                self._idle -= 1

    def _left_queue(self) -> None:
        with self._ready:
            self._awaiting_slot -= 1

    def _drain(self) -> None:
        while (event := self._next()) is not None:
            try:
                self._invoker.run(event, self._left_queue)
            except Exception:  # the thread must outlive one bad event
                logger.exception("asynchronous invocation of %s failed unexpectedly", self.function)


class AsyncInvoker:
    """The queues of every function and what happens to their events."""

    def __init__(
        self,
        *,
        execute: Execute,
        function_of: Callable[[str], FunctionSpec | None],
        concurrency: LambdaConcurrency,
        metrics: LambdaMetrics,
        destinations: Destinations | None,
        backoff_scale: float = 1.0,
    ) -> None:
        self._execute = execute
        self._function_of = function_of
        self.concurrency = concurrency
        self._metrics = metrics
        self._destinations = destinations
        self._backoff_scale = backoff_scale
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._queues: dict[str, AsyncQueue] = {}
        self.outcomes: Counter[str] = Counter()

    def submit(self, function: FunctionSpec, payload: bytes, qualifier: str | None = None) -> str:
        event = AsyncEvent(function.name, payload, qualifier)
        self._metrics.record(function.name, "AsyncEventsReceived", 1, qualifier=qualifier)
        if self.concurrency.limit(function.name) == 0:
            self._give_up(function, event, RETRIES_EXHAUSTED)
        else:
            self._queue(function.name).put(event)
        return event.request_id

    def depths(self) -> dict[str, int]:
        with self._lock:
            queues = dict(self._queues)
        return {name: queue.depth() for name, queue in queues.items() if queue.depth()}

    def stop(self) -> None:
        self.stopped.set()

    def _queue(self, function: str) -> AsyncQueue:
        with self._lock:
            if function not in self._queues:
                self._queues[function] = AsyncQueue(function, self)
            return self._queues[function]

    def run(self, event: AsyncEvent, left_queue: Callable[[], None] = lambda: None) -> None:
        """One attempt of `event` once a slot is free, then its next step. `left_queue` is called once,
        when the event holds a slot or is given up."""
        try:
            taken = self._take_slot(event)
        finally:
            left_queue()
        if taken is None:
            return
        function, deadline = taken
        config = function.event_invoke_config
        try:
            age_ms = (time.monotonic() - event.received) * 1000
            self._metrics.record(function.name, "AsyncEventAge", age_ms, MILLISECONDS, event.qualifier)
            event.attempts += 1
            event.response = self._execute(function, event)
        finally:
            self.concurrency.release(function.name)
        if self.stopped.is_set():
            return  # shutting down: the queue is in memory and goes with the process
        if not event.response.function_error:
            self.outcomes["succeeded"] += 1
            self._send(function, event, SUCCESS, config.on_success)
            return
        if event.attempts > config.maximum_retry_attempts:
            self._give_up(function, event, RETRIES_EXHAUSTED)
            return
        delay = RETRY_DELAYS_SECONDS[min(event.attempts, len(RETRY_DELAYS_SECONDS)) - 1] * self._backoff_scale
        if time.monotonic() + delay > deadline:
            self._give_up(function, event, EVENT_AGE_EXCEEDED)
            return
        self.outcomes["retried"] += 1
        self._queue(function.name).put(event, delay=delay)

    def _take_slot(self, event: AsyncEvent) -> tuple[FunctionSpec, float] | None:
        """The event's function and deadline, with a concurrency slot held; None when the event was
        dropped or given up instead (or the invoker stopped)."""
        function = self._function_of(event.function)
        if function is None:
            logger.warning("dropping an event of %s: the function is no longer deployed", event.function)
            self.outcomes["dropped"] += 1
            return None
        deadline = event.received + function.event_invoke_config.maximum_event_age_seconds
        if not self.concurrency.acquire(function.name, self.stopped, deadline=deadline):
            if not self.stopped.is_set():
                self._give_up(function, event, EVENT_AGE_EXCEEDED)
            return None
        return function, deadline

    def _give_up(self, function: FunctionSpec, event: AsyncEvent, condition: str) -> None:
        self.outcomes["dropped"] += 1
        self._metrics.record(function.name, "AsyncEventsDropped", 1, qualifier=event.qualifier)
        logger.warning(
            "%s: event %s dropped (%s, %d attempts)",
            function.name,
            event.request_id,
            condition,
            event.attempts,
        )
        self._send(function, event, condition, function.event_invoke_config.on_failure)

    def _send(
        self, function: FunctionSpec, event: AsyncEvent, condition: str, destination: str | None
    ) -> None:
        if destination is None:
            return
        record = invocation_record(
            request_id=event.request_id,
            function_arn=function.qualified_arn(event.qualifier),
            condition=condition,
            approximate_invoke_count=event.attempts,
            request_payload=event.payload,
            response=event.response,
            timestamp=dt.datetime.now(dt.UTC),
        )
        try:
            if self._destinations is None:
                raise RuntimeError("no destination sender is configured")
            self._destinations.send(destination, record)
        except Exception as error:
            logger.warning("%s: the record for %s was not delivered: %s", function.name, destination, error)
            self._metrics.record(function.name, "DestinationDeliveryFailures", 1, qualifier=event.qualifier)
