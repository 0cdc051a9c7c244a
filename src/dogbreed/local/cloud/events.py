"""The local event router: delivers what moto's EventBridge matched to the template's targets.

moto matches each rule's pattern and puts the event on the rule's delivery queue (see
`stack._deploy_rules`). This router long-polls those queues and delivers like EventBridge and Lambda:

- state machine targets: StartExecution (moto's Step Functions) on a small fixed pool of delivery
  threads; a failed delivery is retried up to the rule's RetryPolicy.MaximumRetryAttempts (or until
  MaximumEventAgeInSeconds), then the event goes to the rule's DeadLetterConfig queue;
- Lambda targets: an asynchronous invocation. The event enters the function's queue (Lambda's
  internal async queue, unbounded) and runs when a concurrency slot is free: at most the function's
  ReservedConcurrentExecutions at once, or the account's unreserved pool (`LambdaConcurrency`). A
  function error is retried EventInvokeConfig.MaximumRetryAttempts times (the event goes back to
  the queue, freeing its slot); an event older than MaximumEventAgeInSeconds, waiting or failed, goes
  to the function's OnFailure destination (or the rule's dead-letter queue). Waiting for a slot is
  never a failure, as in Lambda, where throttled async events stay queued.

Each event gets a unique id (the delivery message id), as EventBridge gives every event its own.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dogbreed.local import moto_shim
from dogbreed.local.cloud.concurrency import LambdaConcurrency
from dogbreed.local.cloud.stack import Deployment, Route

logger = logging.getLogger(__name__)

# StartExecution is one quick API call: a few threads deliver every state machine event.
STATE_MACHINE_DELIVERY_THREADS = 4
# A queue's idle worker ends after this long, so an unreserved function does not hold threads.
WORKER_IDLE_SECONDS = 5.0


@dataclass
class Delivery:
    rule: str
    target: str
    event_id: str
    detail: str
    outcome: str  # delivered | failed-to-dlq | error
    attempts: int
    at: float = field(default_factory=time.time)
    error: str | None = None


@dataclass
class QueuedEvent:
    """One asynchronous invocation waiting in (or going back to) its function's queue."""

    route: Route
    event: dict[str, Any]
    received: float = field(default_factory=time.monotonic)
    attempts: int = 0  # invocations that ran and failed
    error: str = ""

    def expired(self, now: float) -> bool:
        return now - self.received > self.route.max_event_age_seconds


class AsyncInvocations:
    """One function's asynchronous invocation queue and the workers that drain it: never more
    workers than the function may run at once, each holding a concurrency slot while it invokes."""

    def __init__(
        self,
        function: str,
        *,
        concurrency: LambdaConcurrency,
        invoke: Callable[[QueuedEvent], None],
        stop: threading.Event,
    ) -> None:
        self.function = function
        self._concurrency = concurrency
        self._invoke = invoke
        self._stop = stop
        self._ready = threading.Condition()
        self._queue: list[tuple[float, int, QueuedEvent]] = []  # (not before, order, event): a heap
        self._order = itertools.count()
        self._workers = 0
        self._idle = 0

    def put(self, item: QueuedEvent, delay: float = 0.0) -> None:
        with self._ready:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), item))
            self._ready.notify()
            # Another worker only when the queue holds more than the idle workers will take.
            if len(self._queue) > self._idle and self._workers < self._concurrency.limit(self.function):
                self._workers += 1
                threading.Thread(target=self._work, name=f"lambda-{self.function}", daemon=True).start()

    def depth(self) -> int:
        with self._ready:
            return len(self._queue)

    def take_expired(self) -> list[QueuedEvent]:
        """Events that outlived MaximumEventAgeInSeconds while queued (e.g. no slot ever freed)."""
        now = time.monotonic()
        with self._ready:
            expired = [entry for entry in self._queue if entry[2].expired(now)]
            if expired:
                self._queue = [entry for entry in self._queue if not entry[2].expired(now)]
                heapq.heapify(self._queue)
        return [entry[2] for entry in expired]

    def _next(self) -> QueuedEvent | None:
        """The next due event, or None when this worker has been idle long enough to end."""
        idle_since = time.monotonic()
        with self._ready:
            self._idle += 1
            try:
                while not self._stop.is_set():
                    now = time.monotonic()
                    if self._queue and self._queue[0][0] <= now:
                        return heapq.heappop(self._queue)[2]
                    if not self._queue and now - idle_since > WORKER_IDLE_SECONDS:
                        break
                    wait = self._queue[0][0] - now if self._queue else WORKER_IDLE_SECONDS
                    self._ready.wait(min(max(wait, 0.01), 1.0))
                self._workers -= 1
                return None
            finally:
                self._idle -= 1

    def _work(self) -> None:
        while (item := self._next()) is not None:
            if not self._concurrency.acquire(self.function, self._stop):
                self.put(item)
                return
            try:
                self._invoke(item)
            except Exception:  # the worker must outlive one bad event
                logger.exception("async invocation of %s failed unexpectedly", self.function)
            finally:
                self._concurrency.release(self.function)


class EventRouter:
    def __init__(
        self,
        session: Any,
        *,
        poll_seconds: int = 1,
        retry_delay_seconds: float = 0.5,
        history: int = 200,
        concurrency: LambdaConcurrency | None = None,
    ) -> None:
        self._sqs = session.client("sqs")
        self._sfn = session.client("stepfunctions")
        self._poll_seconds = poll_seconds
        self._retry_delay = retry_delay_seconds
        self._routes: list[Route] = []
        self._functions: dict[str, moto_shim.LambdaFunction] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state_machine_pool = ThreadPoolExecutor(
            STATE_MACHINE_DELIVERY_THREADS, thread_name_prefix="deliver-states"
        )
        self._queues: dict[str, AsyncInvocations] = {}
        self.concurrency = concurrency or LambdaConcurrency()
        self.deliveries: deque[Delivery] = deque(maxlen=history)

    def configure(self, deployment: Deployment) -> None:
        with self._lock:
            self._routes = list(deployment.routes)
            self._functions = {function.name: function for function in deployment.functions.values()}
        self.concurrency.configure(deployment.reserved_concurrency)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="event-router", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._poll_seconds + 5)
        self._state_machine_pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                routes = list(self._routes)
            if not routes:
                self._stop.wait(0.2)
                continue
            for route in routes:
                try:
                    self.poll_once(route, wait_seconds=0 if len(routes) > 1 else self._poll_seconds)
                except Exception:  # the router must outlive one bad poll
                    logger.exception("event router: polling %s failed", route.rule_name)
            self._expire_queued()
            if len(routes) > 1:
                self._stop.wait(0.2)

    def poll_once(self, route: Route, wait_seconds: int = 0) -> int:
        response = self._sqs.receive_message(
            QueueUrl=route.delivery_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        messages = response.get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            event["id"] = message["MessageId"]
            if route.target_kind == "states":
                self._state_machine_pool.submit(self._deliver_to_state_machine, route, event)
            else:
                self._queue_for(route.target).put(QueuedEvent(route, event))
            self._sqs.delete_message(
                QueueUrl=route.delivery_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return len(messages)

    def queue_depths(self) -> dict[str, int]:
        """Events waiting in each function's asynchronous queue."""
        with self._lock:
            queues = dict(self._queues)
        return {name: queue.depth() for name, queue in queues.items()}

    def _queue_for(self, function: str) -> AsyncInvocations:
        with self._lock:
            queue = self._queues.get(function)
            if queue is None:
                queue = AsyncInvocations(
                    function, concurrency=self.concurrency, invoke=self._run_queued, stop=self._stop
                )
                self._queues[function] = queue
            return queue

    def _expire_queued(self) -> None:
        with self._lock:
            queues = list(self._queues.values())
        for queue in queues:
            for item in queue.take_expired():
                self._give_up(item.route, item.event, item.attempts, item.error or "event expired in queue")

    # --- Lambda targets ------------------------------------------------------------------------
    def _run_queued(self, item: QueuedEvent) -> None:
        route = item.route
        if item.expired(time.monotonic()):
            self._give_up(route, item.event, item.attempts, item.error or "event expired in queue")
            return
        item.attempts += 1
        try:
            result = self._invoke_function(route, item.event)
        except Exception as exc:
            item.error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "%s -> %s attempt %d failed: %s", route.rule_name, route.target, item.attempts, item.error
            )
            if item.attempts <= route.async_retries and not self._stop.is_set():
                self._queue_for(route.target).put(item, delay=self._retry_delay * item.attempts)
            else:
                self._give_up(route, item.event, item.attempts, item.error)
            return
        self._record_delivered(route, item.event, item.attempts, result)

    def _invoke_function(self, route: Route, event: dict[str, Any]) -> str:
        with self._lock:
            function = self._functions.get(route.target)
        if function is None:
            raise LookupError(f"function {route.target} is not deployed")
        result, function_error = moto_shim.invoke_lambda(function, event)
        if function_error:
            raise RuntimeError(f"{function_error}: {json.dumps(result)[:500]}")
        return json.dumps(result)[:200]

    # --- state machine targets -------------------------------------------------------------------
    def _deliver_to_state_machine(self, route: Route, event: dict[str, Any]) -> None:
        started = time.monotonic()
        error = ""
        for attempt in range(1, route.max_retries + 2):
            try:
                result = self._start_execution(route, event)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "%s -> %s attempt %d failed: %s", route.rule_name, route.target, attempt, error
                )
                if time.monotonic() - started > route.max_event_age_seconds:
                    break
                self._stop.wait(self._retry_delay * attempt)
                continue
            self._record_delivered(route, event, attempt, result)
            return
        self._give_up(route, event, route.max_retries + 1, error)

    def _start_execution(self, route: Route, event: dict[str, Any]) -> str:
        # EventBridge names each execution it starts (moto would leave the name unset).
        response = self._sfn.start_execution(
            stateMachineArn=route.target, name=str(event["id"])[:80], input=json.dumps(event)
        )
        return str(response["executionArn"])

    # --- outcomes ----------------------------------------------------------------------------
    def _record_delivered(self, route: Route, event: dict[str, Any], attempts: int, result: str) -> None:
        self.deliveries.append(
            Delivery(route.rule_name, route.target, event["id"], _object_key(event), "delivered", attempts)
        )
        logger.info("%s -> %s: %s", route.rule_name, route.target, result)

    def _give_up(self, route: Route, event: dict[str, Any], attempts: int, error: str) -> None:
        """The event's budget is spent: to the OnFailure destination or dead-letter queue, if any."""
        dead_letter_url = (
            route.dead_letter_queue_url
            if route.target_kind == "states"
            else route.on_failure_queue_url or route.dead_letter_queue_url
        )
        outcome = "error"
        if dead_letter_url:
            self._sqs.send_message(
                QueueUrl=dead_letter_url,
                MessageBody=json.dumps(event),
                MessageAttributes={
                    "RULE_ARN": {"DataType": "String", "StringValue": route.rule_name},
                    "TARGET_ARN": {"DataType": "String", "StringValue": route.target},
                    "ERROR_MESSAGE": {"DataType": "String", "StringValue": error[:1000] or "failed"},
                },
            )
            outcome = "failed-to-dlq"
        self.deliveries.append(
            Delivery(
                route.rule_name, route.target, event["id"], _object_key(event), outcome, attempts, error=error
            )
        )

    def status(self) -> list[dict[str, Any]]:
        return [vars(delivery) for delivery in list(self.deliveries)[-20:]]


def _object_key(event: dict[str, Any]) -> str:
    return str(event.get("detail", {}).get("object", {}).get("key", ""))
