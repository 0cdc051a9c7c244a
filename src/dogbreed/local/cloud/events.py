"""The local event router: delivers what moto's EventBridge matched to the template's targets.

moto matches each rule's pattern and puts the event on the rule's delivery queue (see
`stack._deploy_rules`). This router long-polls those queues and delivers like EventBridge and Lambda:

- state machine targets: StartExecution (moto's Step Functions); a failed delivery is retried up to
  the rule's RetryPolicy.MaximumRetryAttempts (or until MaximumEventAgeInSeconds), then the event
  goes to the rule's DeadLetterConfig queue;
- Lambda targets: an asynchronous invocation of the real handler in this process with its template
  environment; a function error is retried EventInvokeConfig.MaximumRetryAttempts times, then the
  event goes to the function's OnFailure destination (or the rule's dead-letter queue).

Each event gets a unique id (the delivery message id), as EventBridge gives every event its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dogbreed.local import moto_shim
from dogbreed.local.cloud.stack import Deployment, Route

logger = logging.getLogger(__name__)


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
        self, session: Any, *, poll_seconds: int = 1, retry_delay_seconds: float = 0.5, history: int = 200
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
        self.deliveries: deque[Delivery] = deque(maxlen=history)

    def configure(self, deployment: Deployment) -> None:
        with self._lock:
            self._routes = list(deployment.routes)
            self._functions = {function.name: function for function in deployment.functions.values()}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="event-router", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._poll_seconds + 5)

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
            # Delivery happens off the polling thread so a slow handler does not hold other rules.
            threading.Thread(
                target=self._deliver, args=(route, event), name=f"deliver-{route.rule_name}", daemon=True
            ).start()
            self._sqs.delete_message(
                QueueUrl=route.delivery_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return len(messages)

    def _deliver(self, route: Route, event: dict[str, Any]) -> None:
        if route.target_kind == "states":
            self._with_retries(
                route, event, route.max_retries, route.dead_letter_queue_url, self._start_execution
            )
        else:
            dlq = route.on_failure_queue_url or route.dead_letter_queue_url
            self._with_retries(route, event, route.async_retries, dlq, self._invoke_function)

    def _with_retries(
        self,
        route: Route,
        event: dict[str, Any],
        retries: int,
        dead_letter_url: str | None,
        send: Callable[[Route, dict[str, Any]], str],
    ) -> None:
        started = time.monotonic()
        detail = event.get("detail", {}).get("object", {}).get("key", "")
        error = ""
        for attempt in range(1, retries + 2):
            try:
                result = send(route, event)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "%s -> %s attempt %d failed: %s", route.rule_name, route.target, attempt, error
                )
                if time.monotonic() - started > route.max_event_age_seconds:
                    break
                self._stop.wait(self._retry_delay * attempt)
                continue
            self.deliveries.append(
                Delivery(route.rule_name, route.target, event["id"], detail, "delivered", attempt)
            )
            logger.info("%s -> %s: %s", route.rule_name, route.target, result)
            return
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
            Delivery(route.rule_name, route.target, event["id"], detail, outcome, retries + 1, error=error)
        )

    def _start_execution(self, route: Route, event: dict[str, Any]) -> str:
        # EventBridge names each execution it starts (moto would leave the name unset).
        response = self._sfn.start_execution(
            stateMachineArn=route.target, name=str(event["id"])[:80], input=json.dumps(event)
        )
        return str(response["executionArn"])

    def _invoke_function(self, route: Route, event: dict[str, Any]) -> str:
        with self._lock:
            function = self._functions.get(route.target)
        if function is None:
            raise LookupError(f"function {route.target} is not deployed")
        result, function_error = moto_shim.invoke_lambda(function, event)
        if function_error:
            raise RuntimeError(f"{function_error}: {json.dumps(result)[:500]}")
        return json.dumps(result)[:200]

    def status(self) -> list[dict[str, Any]]:
        return [vars(delivery) for delivery in list(self.deliveries)[-20:]]
