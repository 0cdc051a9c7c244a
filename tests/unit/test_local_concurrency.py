"""Lambda concurrency in the local cloud: reserved and unreserved slots, and the asynchronous
invocation queue (events wait for a slot, failures are retried, the budget's end goes to the OnFailure
destination as Lambda's invocation record). The function's runs are faked here; the real worker
processes are tests/integration/test_lambda_runtime.py's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dogbreed.local.lambda_runtime.async_invocations import AsyncEvent, AsyncInvoker
from dogbreed.local.lambda_runtime.concurrency import LambdaConcurrency
from dogbreed.local.lambda_runtime.function import EventInvokeConfig, FunctionSpec
from dogbreed.local.lambda_runtime.invocation_record import InvocationResponse
from dogbreed.local.lambda_runtime.metrics import LambdaMetrics
from dogbreed.local.lambda_runtime.workers import Worker, WorkerPool
from tests.support.waiting import wait_for

FUNCTION = "dogbreed-local-PredictS3Function"
FAILURE_DESTINATION = "arn:aws:sqs:us-east-1:123456789012:on-failure"


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


# --- handing out workers ------------------------------------------------------------------------------


class FakeWorker:
    """A worker process stand-in: ready at once, nothing to stop."""

    def __init__(self, function: FunctionSpec) -> None:
        self.function = function
        self.init_ms: float | None = 0.0
        self.init_failure = None
        self.invocations = 0
        self.pid = 0
        self.last_used = time.monotonic()

    def initialise(self, timeout: float) -> None:
        return None

    def stop(self) -> None:
        return None

    def kill(self) -> None:
        return None


def waiting(pool: WorkerPool, count: int) -> Callable[[], bool]:
    return lambda: pool.counts()["waiting"] == count


def test_invocations_waiting_for_a_worker_get_one_in_arrival_order() -> None:
    # Given a pool of one worker, busy
    def start(spec: FunctionSpec) -> Worker:
        return FakeWorker(spec)  # type: ignore[return-value]

    pool = WorkerPool(function(reserved=None), start, max_workers=1, max_starting=1, init_seconds=1)
    first = pool.checkout()
    order: list[int] = []

    def take_turn(index: int) -> None:
        worker = pool.checkout()
        order.append(index)
        pool.checkin(worker, healthy=True)

    # When five invocations queue for it one after another
    threads = []
    for index in range(5):
        thread = threading.Thread(target=take_turn, args=(index,))
        thread.start()
        threads.append(thread)
        wait_for(waiting(pool, index + 1), timeout=10, what="the queued invocations", interval=0.02)

    # Then, once it is free, they get it first come, first served
    pool.checkin(first, healthy=True)
    for thread in threads:
        thread.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]


# --- the asynchronous invocation queue ----------------------------------------------------------------


class FakeDestinations:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, destination_arn: str, record: dict[str, Any]) -> None:
        self.sent.append((destination_arn, record))


def function(*, reserved: int | None, retries: int = 2, max_age: int = 3600) -> FunctionSpec:
    return FunctionSpec(
        name=FUNCTION,
        code_dir=Path("."),
        handler="unused.handler",
        reserved_concurrency=reserved,
        event_invoke_config=EventInvokeConfig(
            maximum_retry_attempts=retries, maximum_event_age_seconds=max_age, on_failure=FAILURE_DESTINATION
        ),
    )


def s3_event(index: int) -> bytes:
    return json.dumps(
        {"detail-type": "Object Created", "detail": {"object": {"key": f"incoming/x/{index}.jpg"}}}
    ).encode()


@pytest.fixture
def make_invoker() -> Iterator[Callable[..., tuple[AsyncInvoker, FakeDestinations]]]:
    invokers: list[AsyncInvoker] = []

    def make(
        spec: FunctionSpec,
        run: Callable[[AsyncEvent], InvocationResponse],
        concurrency: LambdaConcurrency | None = None,
    ) -> tuple[AsyncInvoker, FakeDestinations]:
        if concurrency is None:
            concurrency = LambdaConcurrency(account_limit=10)
            concurrency.configure(
                {spec.name: spec.reserved_concurrency} if spec.reserved_concurrency is not None else {}
            )
        destinations = FakeDestinations()
        invoker = AsyncInvoker(
            execute=lambda _function, event: run(event),
            function_of=lambda name: spec if name == spec.name else None,
            concurrency=concurrency,
            metrics=LambdaMetrics(None),
            destinations=destinations,
            backoff_scale=0.0001,
        )
        invokers.append(invoker)
        return invoker, destinations

    yield make
    for invoker in invokers:
        invoker.stop()


OK = InvocationResponse(b'{"status": "ok"}', None)


def recording(calls: list[AsyncEvent]) -> Callable[[AsyncEvent], InvocationResponse]:
    def run(event: AsyncEvent) -> InvocationResponse:
        calls.append(event)
        return OK

    return run


FAILED = InvocationResponse(b'{"errorMessage": "endpoint down", "errorType": "RuntimeError"}', "Unhandled")


def test_queued_events_run_no_more_than_the_reservation_at_once_and_none_is_dropped(
    make_invoker: Callable[..., tuple[AsyncInvoker, FakeDestinations]],
) -> None:
    # Given a function reserved at 3 whose invocations take a while
    lock = threading.Lock()
    running, peak, done = [0], [0], []

    def run(event: AsyncEvent) -> InvocationResponse:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            done.append(json.loads(event.payload)["detail"]["object"]["key"])
        return OK

    invoker, destinations = make_invoker(function(reserved=3), run)

    # When 12 events arrive at once
    for index in range(12):
        invoker.submit(function(reserved=3), s3_event(index))

    # Then every one runs, never more than 3 at a time, and none goes to the OnFailure destination
    wait_for(lambda: len(done) == 12, timeout=10, what="the queued invocations", interval=0.02)
    assert (peak[0], sorted(done), destinations.sent) == (
        3,
        sorted(f"incoming/x/{i}.jpg" for i in range(12)),
        [],
    )


def test_a_failing_invocation_is_retried_then_its_record_goes_to_the_on_failure_destination(
    make_invoker: Callable[..., tuple[AsyncInvoker, FakeDestinations]],
) -> None:
    # Given a function that always fails and two async retries
    attempts: list[str] = []

    def run(event: AsyncEvent) -> InvocationResponse:
        attempts.append(event.request_id)
        return FAILED

    invoker, destinations = make_invoker(function(reserved=1, retries=2), run)

    # When one event is invoked asynchronously
    request_id = invoker.submit(function(reserved=1, retries=2), s3_event(0))

    # Then it runs 3 times, then Lambda's record of the last attempt lands in the OnFailure destination
    wait_for(lambda: len(destinations.sent) == 1, timeout=10, what="the queued invocations", interval=0.02)
    destination, record = destinations.sent[0]
    assert (attempts, destination) == ([request_id] * 3, FAILURE_DESTINATION)
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"]["detail"]["object"]["key"] == "incoming/x/0.jpg"
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"] == {"errorMessage": "endpoint down", "errorType": "RuntimeError"}


def test_an_event_that_never_gets_a_slot_expires_to_the_on_failure_destination(
    make_invoker: Callable[..., tuple[AsyncInvoker, FakeDestinations]],
) -> None:
    # Given a function reserved at 1 whose only slot stays taken, and a 1 s maximum event age
    spec = function(reserved=1, max_age=1)
    concurrency = LambdaConcurrency(account_limit=10)
    concurrency.configure({FUNCTION: 1})
    assert concurrency.try_acquire(FUNCTION)
    calls: list[AsyncEvent] = []
    invoker, destinations = make_invoker(spec, recording(calls), concurrency)

    # When an event is invoked asynchronously
    invoker.submit(spec, s3_event(0))

    # Then it waits, never runs, and is dropped to the destination once it is too old, without a response
    wait_for(lambda: len(destinations.sent) == 1, timeout=10, what="the queued invocations", interval=0.02)
    record = destinations.sent[0][1]
    assert (
        calls,
        record["requestContext"]["condition"],
        record["requestContext"]["approximateInvokeCount"],
    ) == (
        [],
        "EventAgeExceeded",
        0,
    )
    assert "responseContext" not in record and "responsePayload" not in record


def test_a_function_reserved_at_zero_sends_new_events_to_the_destination_without_running_them(
    make_invoker: Callable[..., tuple[AsyncInvoker, FakeDestinations]],
) -> None:
    calls: list[AsyncEvent] = []
    invoker, destinations = make_invoker(function(reserved=0), recording(calls))

    invoker.submit(function(reserved=0), s3_event(0))

    assert (calls, [arn for arn, _record in destinations.sent]) == ([], [FAILURE_DESTINATION])


def test_a_success_after_a_retry_sends_nothing_to_the_on_failure_destination(
    make_invoker: Callable[..., tuple[AsyncInvoker, FakeDestinations]],
) -> None:
    answers = [FAILED, OK]
    invoker, destinations = make_invoker(function(reserved=1), lambda _event: answers.pop(0))

    invoker.submit(function(reserved=1), s3_event(0))

    wait_for(
        lambda: invoker.outcomes["succeeded"] == 1, timeout=10, what="the queued invocations", interval=0.02
    )
    assert (answers, destinations.sent, invoker.outcomes["retried"]) == ([], [], 1)
