"""Lambda concurrency in the local cloud: reserved and unreserved slots, and the event router's
asynchronous queue (events wait for a slot, failures are retried, the budget's end goes to the DLQ)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dogbreed.local import moto_shim
from dogbreed.local.cloud.concurrency import LambdaConcurrency
from dogbreed.local.cloud.events import AsyncInvocations, EventRouter, QueuedEvent
from dogbreed.local.cloud.stack import Deployment, Route

FUNCTION = "dogbreed-local-PredictS3Function"
DELIVERY_QUEUE = "http://sqs/delivery"
FAILURE_QUEUE = "http://sqs/on-failure"


# --- slots -------------------------------------------------------------------------------------------


def test_a_reserved_function_runs_at_most_its_reservation() -> None:
    concurrency = LambdaConcurrency(account_limit=10)
    concurrency.configure({FUNCTION: 2})
    taken = [concurrency.try_acquire(FUNCTION) for _ in range(3)]
    assert taken == [True, True, False]


def test_a_released_slot_is_free_again() -> None:
    concurrency = LambdaConcurrency(account_limit=10)
    concurrency.configure({FUNCTION: 1})
    concurrency.try_acquire(FUNCTION)
    concurrency.release(FUNCTION)
    assert concurrency.try_acquire(FUNCTION)


def test_unreserved_functions_share_what_the_reservations_leave() -> None:
    # Given an account of 5 with 2 reserved for one function
    concurrency = LambdaConcurrency(account_limit=5)
    concurrency.configure({FUNCTION: 2})

    # When two unreserved functions take slots
    first = [concurrency.try_acquire("api") for _ in range(2)]
    second = [concurrency.try_acquire("other") for _ in range(2)]

    # Then together they get the 3 unreserved slots
    assert (first, second, concurrency.limit("api")) == ([True, True], [True, False], 3)


def test_a_reservation_is_not_taken_from_the_unreserved_pool() -> None:
    concurrency = LambdaConcurrency(account_limit=3)
    concurrency.configure({FUNCTION: 2})
    for _ in range(2):
        concurrency.try_acquire(FUNCTION)
    assert concurrency.try_acquire("api")


def test_acquire_waits_for_a_slot_to_be_released() -> None:
    # Given a function whose only slot is taken
    concurrency = LambdaConcurrency(account_limit=10)
    concurrency.configure({FUNCTION: 1})
    concurrency.try_acquire(FUNCTION)
    threading.Timer(0.2, concurrency.release, args=(FUNCTION,)).start()

    # When an asynchronous invocation asks for one, it gets it once the slot is released
    started = time.monotonic()
    assert concurrency.acquire(FUNCTION, threading.Event(), poll_seconds=0.05)
    assert time.monotonic() - started >= 0.15


# --- the router's asynchronous queue ------------------------------------------------------------------


class FakeSqs:
    """The delivery queue (messages handed out once) and the queues events are parked in."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.pending = [
            {"MessageId": f"m{index}", "ReceiptHandle": f"r{index}", "Body": json.dumps(event)}
            for index, event in enumerate(events)
        ]
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        batch, self.pending = self.pending[:10], self.pending[10:]
        if not batch:
            time.sleep(0.05)  # a long poll that found nothing
        return {"Messages": batch}

    def delete_message(self, **_: Any) -> None:
        return None

    def send_message(self, *, QueueUrl: str, MessageBody: str, **_: Any) -> None:
        self.sent.append((QueueUrl, json.loads(MessageBody)))


class FakeSession:
    def __init__(self, sqs: FakeSqs) -> None:
        self.sqs = sqs

    def client(self, service: str) -> Any:
        return self.sqs if service == "sqs" else object()


def s3_event(index: int) -> dict[str, Any]:
    return {"detail-type": "Object Created", "detail": {"object": {"key": f"incoming/x/{index}.jpg"}}}


def route(*, retries: int = 2, max_age: int = 3600) -> Route:
    return Route(
        rule_name="rule",
        delivery_queue_url=DELIVERY_QUEUE,
        target_kind="lambda",
        target=FUNCTION,
        max_retries=8,
        max_event_age_seconds=max_age,
        dead_letter_queue_url=None,
        async_retries=retries,
        on_failure_queue_url=FAILURE_QUEUE,
    )


@pytest.fixture
def make_router() -> Iterator[Callable[..., tuple[EventRouter, FakeSqs]]]:
    routers: list[EventRouter] = []

    def make(
        handler: Callable[[Any, Any], Any], events: int, *, reserved: int, the_route: Route
    ) -> tuple[EventRouter, FakeSqs]:
        sqs = FakeSqs([s3_event(index) for index in range(events)])
        router = EventRouter(FakeSession(sqs), retry_delay_seconds=0.01)
        function = moto_shim.LambdaFunction(name=FUNCTION, code_dir=Path("."), handler="unused.handler")
        function._callable = handler
        router.configure(
            Deployment(
                stack_name="s",
                parameters={},
                routes=[the_route],
                functions={"PredictS3Function": function},
                reserved_concurrency={FUNCTION: reserved},
            )
        )
        routers.append(router)
        while router.poll_once(the_route):
            pass
        return router, sqs

    yield make
    for router in routers:
        router.stop()


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_queued_events_run_no_more_than_the_reservation_at_once_and_none_is_dropped() -> None:
    # Given a function reserved at 3 whose invocations take a while
    concurrency = LambdaConcurrency(account_limit=10)
    concurrency.configure({FUNCTION: 3})
    lock = threading.Lock()
    running, peak, done = [0], [0], []

    def invoke(item: QueuedEvent) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            done.append(item.event["detail"]["object"]["key"])

    stop = threading.Event()
    queue = AsyncInvocations(FUNCTION, concurrency=concurrency, invoke=invoke, stop=stop)

    # When 12 events arrive at once
    for index in range(12):
        queue.put(QueuedEvent(route(), s3_event(index)))

    # Then every one runs, never more than 3 at a time
    try:
        assert wait_until(lambda: len(done) == 12)
        assert (peak[0], sorted(done)) == (3, sorted(f"incoming/x/{i}.jpg" for i in range(12)))
    finally:
        stop.set()


def test_a_failing_invocation_is_retried_then_sent_to_the_on_failure_destination(
    make_router: Callable[..., tuple[EventRouter, FakeSqs]],
) -> None:
    # Given a function that always fails and two async retries
    attempts: list[int] = []

    def handler(_event: Any, _context: Any) -> None:
        attempts.append(1)
        raise RuntimeError("endpoint down")

    # When one event is delivered
    _router, sqs = make_router(handler, 1, reserved=1, the_route=route(retries=2))

    # Then it runs 3 times, then lands in the OnFailure queue
    assert wait_until(lambda: len(sqs.sent) == 1)
    assert (len(attempts), sqs.sent[0][0], sqs.sent[0][1]["detail"]["object"]["key"]) == (
        3,
        FAILURE_QUEUE,
        "incoming/x/0.jpg",
    )


def test_an_event_that_never_gets_a_slot_expires_to_the_on_failure_destination(
    make_router: Callable[..., tuple[EventRouter, FakeSqs]],
) -> None:
    # Given a function reserved at 0 (every invocation throttled) and a 1 s maximum event age
    calls: list[int] = []

    def handler(_event: Any, _context: Any) -> None:
        calls.append(1)

    router, sqs = make_router(handler, 1, reserved=0, the_route=route(max_age=1))
    router.start()

    # Then the event waits, never runs, and is parked once it is too old
    assert wait_until(lambda: len(sqs.sent) == 1)
    assert (calls, router.deliveries[-1].outcome) == ([], "failed-to-dlq")
