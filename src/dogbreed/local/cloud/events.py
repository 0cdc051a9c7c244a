"""The local event router: delivers what moto's EventBridge matched to the template's targets.

moto matches each rule's pattern and puts the event on the rule's delivery queue (see
`stack._deploy_rules`). This router long-polls those queues and delivers like EventBridge, on a small
fixed pool of delivery threads:

- state machine targets: StartExecution (moto's Step Functions);
- Lambda targets: an asynchronous invocation (`LambdaRuntime.invoke_async`): the event enters the
  function's queue, and from there Lambda's rules apply (concurrency, EventInvokeConfig retries,
  maximum event age, the OnFailure destination with its invocation record; see
  `dogbreed.local.lambda_runtime.async_invocations`).

A delivery that fails (StartExecution errors, a function that is not deployed) is retried up to the
rule's RetryPolicy.MaximumRetryAttempts (or until MaximumEventAgeInSeconds), then the event goes to
the rule's DeadLetterConfig queue with EventBridge's RULE_ARN, TARGET_ARN and ERROR_MESSAGE
attributes. Each event gets a unique id (the delivery message id), as EventBridge gives every event
its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dogbreed.local.cloud.stack import Deployment, Route
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime

logger = logging.getLogger(__name__)

# StartExecution and an asynchronous invoke are each one quick call: a few threads deliver everything.
DELIVERY_THREADS = 4


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


class EventRouter:
    def __init__(
        self,
        session: Any,
        *,
        lambdas: LambdaRuntime,
        poll_seconds: int = 1,
        retry_delay_seconds: float = 0.5,
        history: int = 200,
    ) -> None:
        self._sqs = session.client("sqs")
        self._sfn = session.client("stepfunctions")
        self._lambdas = lambdas
        self._poll_seconds = poll_seconds
        self._retry_delay = retry_delay_seconds
        self._routes: list[Route] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="deliver")
        self.deliveries: deque[Delivery] = deque(maxlen=history)

    def configure(self, deployment: Deployment) -> None:
        with self._lock:
            self._routes = list(deployment.routes)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="event-router", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._poll_seconds + 5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        """One long-polling thread per route (moto's ReceiveMessage waits on the queue, so an idle
        route costs nothing); routes that `configure` drops end after their current poll."""
        pollers: dict[Route, threading.Thread] = {}
        while not self._stop.is_set():
            for route in self._current_routes():
                if route not in pollers or not pollers[route].is_alive():
                    pollers[route] = threading.Thread(
                        target=self._poll_route, args=(route,), name=f"route-{route.rule_name}", daemon=True
                    )
                    pollers[route].start()
            self._stop.wait(0.5)
        for poller in pollers.values():
            poller.join(timeout=self._poll_seconds + 5)

    def _current_routes(self) -> list[Route]:
        with self._lock:
            return list(self._routes)

    def _poll_route(self, route: Route) -> None:
        while not self._stop.is_set() and route in self._current_routes():
            try:
                self.poll_once(route, wait_seconds=self._poll_seconds)
            except Exception:  # the router must outlive one bad poll
                logger.exception("event router: polling %s failed", route.rule_name)
                self._stop.wait(1.0)

    def poll_once(self, route: Route, wait_seconds: int = 0) -> int:
        response = self._sqs.receive_message(
            QueueUrl=route.delivery_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        messages = response.get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            event["id"] = message["MessageId"]
            self._pool.submit(self._deliver, route, event)
            self._sqs.delete_message(
                QueueUrl=route.delivery_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return len(messages)

    # --- delivery ------------------------------------------------------------------------------
    def _deliver(self, route: Route, event: dict[str, Any]) -> None:
        started = time.monotonic()
        error = ""
        for attempt in range(1, route.max_retries + 2):
            try:
                if route.target_kind == "states":
                    result = self._start_execution(route, event)
                else:
                    result = "request " + self._lambdas.invoke_async(route.target, json.dumps(event).encode())
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
        """The delivery's budget is spent: to the rule's dead-letter queue, if any."""
        outcome = "error"
        if route.dead_letter_queue_url:
            self._sqs.send_message(
                QueueUrl=route.dead_letter_queue_url,
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
