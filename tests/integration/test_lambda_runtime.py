"""The local Lambda runtime with real worker processes: functions run concurrently, each in its own
environment, with Lambda's throttling, timeouts, error payloads, metrics and asynchronous records, and
no process outlives the runtime.

Handlers are tiny modules written per test (standard library only), so a cold start costs little.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from dogbreed import FUNCTIONS_DIR
from dogbreed.local import moto_shim
from dogbreed.local.lambda_runtime.errors import TooManyRequestsError
from dogbreed.local.lambda_runtime.function import EventInvokeConfig, FunctionSpec
from dogbreed.local.lambda_runtime.loopback_urls import LOOPBACK_URLS_HOOK
from dogbreed.local.lambda_runtime.metrics import LambdaMetrics
from dogbreed.local.lambda_runtime.principals import access_key_id_for
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime
from dogbreed.loopback import pid_alive

WAIT_SECONDS = 20.0  # the longest a handler waits for something a test does

HANDLERS = '''
import json, os, sys, time
from pathlib import Path


def _wait_for(path, seconds):
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return path.exists()


def rendezvous(event, context):
    """Writes when it started, then waits (bounded) for the other invocation to have started."""
    mine = Path(event["dir"]) / (event["name"] + ".started")
    mine.write_text(repr(time.time()))
    saw_other = _wait_for(Path(event["dir"]) / (event["other"] + ".started"), event["wait"])
    started = float(mine.read_text())
    return {"pid": os.getpid(), "started": started, "ended": time.time(), "saw_other": saw_other}


def hold(event, context):
    """Marks that it runs, then waits for the release file."""
    (Path(event["dir"]) / (event["name"] + ".running")).write_text(str(os.getpid()))
    return {"released": _wait_for(Path(event["dir"]) / "release", event["wait"])}


def environment(event, context):
    return {
        "value": os.environ.get("SHARED_NAME"),
        "parent_only": os.environ.get("PARENT_ONLY"),
        "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "pid": os.getpid(),
        "context": [context.function_name, context.function_version, context.invoked_function_arn,
                    context.memory_limit_in_mb, context.aws_request_id, context.log_group_name,
                    context.log_stream_name],
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def sleep_forever(event, context):
    (Path(event["dir"]) / "pid").write_text(str(os.getpid()))
    time.sleep(3600)


def fail(event, context):
    raise KeyError("boom")


def emf(event, context):
    """One embedded-metric-format log line, as Powertools Metrics prints it, and a plain one."""
    print("an ordinary log line")
    print(json.dumps({
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
            "Namespace": "DogBreed", "Dimensions": [["service", "EndpointName"]],
            "Metrics": [{"Name": "LowConfidence", "Unit": "Count"}]}]},
        "service": "dogbreed", "EndpointName": "ep", "LowConfidence": [event["low"]],
    }))
    return {}


def fetch(event, context):
    from prediction import url_guard
    try:
        return {"bytes": len(url_guard.fetch_url(event["url"]))}
    except Exception as error:
        return {"refused": type(error).__name__}
'''


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "handlers.py").write_text(HANDLERS)
    return code


def spec(code: Path, handler: str, name: str = "fn", **overrides: Any) -> FunctionSpec:
    return FunctionSpec(
        name=name, code_dir=code, handler=f"handlers.{handler}", **{"timeout_seconds": 30, **overrides}
    )


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., LambdaRuntime]]:
    runtimes: list[LambdaRuntime] = []

    def make(*functions: FunctionSpec, **options: Any) -> LambdaRuntime:
        runtime = LambdaRuntime(**options)
        runtime.configure(functions)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.close()


def invoke(runtime: LambdaRuntime, name: str, event: dict[str, Any]) -> Any:
    return runtime.invoke(name, json.dumps(event).encode())


def wait_for(check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not true within {timeout} s")


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target()))
    thread.start()
    return thread, out


# --- concurrency -----------------------------------------------------------------------------------


def test_two_invocations_of_one_function_run_at_the_same_time_in_two_workers(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, tmp_path: Path
) -> None:
    # Given a function whose handler waits until the other invocation has started too
    runtime = make_runtime(spec(code_dir, "rendezvous"))
    events = [
        {"dir": str(tmp_path), "name": name, "other": other, "wait": WAIT_SECONDS}
        for name, other in (("a", "b"), ("b", "a"))
    ]

    # When both are invoked at once
    def run(event: dict[str, Any]) -> Any:
        return invoke(runtime, "fn", event).document()

    threads = [in_thread(functools.partial(run, event)) for event in events]
    for thread, _out in threads:
        thread.join(timeout=60)
    first, second = (out[0] for _thread, out in threads)

    # Then each saw the other running, in a process of its own, and their handler times overlap
    assert (first["saw_other"], second["saw_other"]) == (True, True)
    assert first["pid"] != second["pid"]
    assert first["started"] < second["ended"] and second["started"] < first["ended"]


def test_the_invocation_past_the_reserved_concurrency_is_throttled(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, tmp_path: Path
) -> None:
    # Given a function reserved at 1 with one invocation in flight
    runtime = make_runtime(spec(code_dir, "hold", reserved_concurrency=1))
    event = {"dir": str(tmp_path), "name": "first", "wait": WAIT_SECONDS}
    thread, out = in_thread(lambda: invoke(runtime, "fn", event).document())
    wait_for(lambda: (tmp_path / "first.running").exists())

    # When a second synchronous invocation arrives, it is throttled as Lambda throttles it
    with pytest.raises(TooManyRequestsError) as throttled:
        invoke(runtime, "fn", {**event, "name": "second"})
    (tmp_path / "release").write_text("")
    thread.join(timeout=60)

    # Then it never ran, and the first one finished normally
    assert (throttled.value.status, throttled.value.code, throttled.value.body()) == (
        429,
        "TooManyRequestsException",
        {
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            "Type": "User",
            "message": "Rate Exceeded.",
        },
    )
    assert not (tmp_path / "second.running").exists()
    assert out == [{"released": True}]


def test_an_asynchronous_invocation_past_the_reservation_waits_in_the_queue(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, tmp_path: Path
) -> None:
    # Given a function reserved at 1 with one invocation in flight
    runtime = make_runtime(spec(code_dir, "hold", reserved_concurrency=1))
    event = {"dir": str(tmp_path), "name": "first", "wait": WAIT_SECONDS}
    thread, _out = in_thread(lambda: invoke(runtime, "fn", event))
    wait_for(lambda: (tmp_path / "first.running").exists())

    # When an asynchronous invocation arrives, it is accepted and queued, not run
    runtime.invoke_async("fn", json.dumps({**event, "name": "queued"}).encode())
    queued = runtime.async_invoker.depths()

    # Then it runs once the slot is free, and succeeds
    (tmp_path / "release").write_text("")
    thread.join(timeout=60)
    wait_for(lambda: runtime.async_invoker.outcomes["succeeded"] == 1)
    assert queued == {"fn": 1}
    assert (tmp_path / "queued.running").exists()


# --- environment, credentials, context ---------------------------------------------------------------


def test_each_function_sees_its_own_environment_and_credentials_only(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two functions with different values of one variable, and a variable only this process has
    monkeypatch.setenv("PARENT_ONLY", "leaked")
    first = spec(code_dir, "environment", "fn-a", logical_id="FunctionA", environment={"SHARED_NAME": "a"})
    second = spec(code_dir, "environment", "fn-b", logical_id="FunctionB", environment={"SHARED_NAME": "b"})
    runtime = make_runtime(first, second)

    # When both run
    seen = {name: invoke(runtime, name, {}).document() for name in ("fn-a", "fn-b")}

    # Then each got its own value and its own access key, which maps back to it
    assert (seen["fn-a"]["value"], seen["fn-b"]["value"]) == ("a", "b")
    assert (seen["fn-a"]["parent_only"], seen["fn-b"]["parent_only"]) == (None, None)
    keys = [seen[name]["access_key_id"] for name in ("fn-a", "fn-b")]
    assert keys == [access_key_id_for(first.execution_role_arn), access_key_id_for(second.execution_role_arn)]
    assert [runtime.principals.lookup(key).function_name for key in keys] == ["fn-a", "fn-b"]  # type: ignore[union-attr]


def test_the_handler_gets_lambdas_context(make_runtime: Callable[..., LambdaRuntime], code_dir: Path) -> None:
    runtime = make_runtime(spec(code_dir, "environment", memory_mb=512))

    result = runtime.invoke("fn:live", b"{}")
    seen = result.document()

    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    name, version, invoked_arn, memory, request_id, group, stream = seen["context"]
    assert (name, version, invoked_arn, memory, request_id, group) == (
        "fn",
        "$LATEST",
        f"{arn}:live",
        "512",
        result.request_id,
        "/aws/lambda/fn",
    )
    assert stream.startswith(time.strftime("%Y/%m/%d", time.gmtime())[:4]) and "[$LATEST]" in stream
    assert 0 < seen["remaining_ms"] <= 30_000


def test_a_warm_worker_is_reused_and_only_the_first_invocation_is_a_cold_start(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path
) -> None:
    runtime = make_runtime(spec(code_dir, "environment"))

    results = [runtime.invoke("fn", b"{}") for _ in range(3)]

    assert [result.cold_start for result in results] == [True, False, False]
    assert len({result.document()["pid"] for result in results}) == 1


# --- failures ------------------------------------------------------------------------------------------


def test_a_handler_past_its_timeout_is_killed_and_reported_as_lambda_reports_it(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, tmp_path: Path
) -> None:
    runtime = make_runtime(spec(code_dir, "sleep_forever", timeout_seconds=1))

    result = invoke(runtime, "fn", {"dir": str(tmp_path)})

    assert result.function_error == "Unhandled"
    assert result.document() == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert not pid_alive(int((tmp_path / "pid").read_text()))


def test_an_unhandled_exception_gives_lambdas_error_payload(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path
) -> None:
    runtime = make_runtime(spec(code_dir, "fail"))

    result = runtime.invoke("fn", b"{}")
    payload = result.document()

    assert result.function_error == "Unhandled"
    assert {key: payload[key] for key in ("errorMessage", "errorType", "requestId")} == {
        "errorMessage": "'boom'",
        "errorType": "KeyError",
        "requestId": result.request_id,
    }
    assert (
        'raise KeyError("boom")' in payload["stackTrace"][-1] and "handlers.py" in payload["stackTrace"][-1]
    )


def test_a_handler_module_that_cannot_be_imported_is_a_runtime_import_error(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path
) -> None:
    runtime = make_runtime(FunctionSpec(name="fn", code_dir=code_dir, handler="missing.handler"))

    result = runtime.invoke("fn", b"{}")

    assert (result.function_error, result.document()["errorType"], result.document()["errorMessage"]) == (
        "Unhandled",
        "Runtime.ImportModuleError",
        "Unable to import module 'missing': No module named 'missing'",
    )


def test_a_worker_that_cannot_be_started_fails_the_invocation_instead_of_hanging(
    make_runtime: Callable[..., LambdaRuntime], tmp_path: Path
) -> None:
    runtime = make_runtime(FunctionSpec(name="fn", code_dir=tmp_path / "missing", handler="handlers.fail"))

    with pytest.raises(RuntimeError, match="cannot start a worker of fn"):
        runtime.invoke("fn", b"{}")


# --- asynchronous records and metrics --------------------------------------------------------------------


class RecordingDestinations:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, destination_arn: str, record: dict[str, Any]) -> None:
        self.sent.append((destination_arn, record))


def test_a_failed_asynchronous_invocation_sends_lambdas_record_to_the_on_failure_destination(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path
) -> None:
    # Given a failing function with one retry and an OnFailure queue
    destination = "arn:aws:sqs:us-east-1:123456789012:failures"
    config = EventInvokeConfig(maximum_retry_attempts=1, on_failure=destination)
    destinations = RecordingDestinations()
    runtime = make_runtime(
        spec(code_dir, "fail", event_invoke_config=config),
        destinations=destinations,
        async_backoff_scale=0.001,
    )

    # When it is invoked asynchronously
    request_id = runtime.invoke_async("fn", b'{"order": 7}')

    # Then, both attempts failed, the destination gets the invocation record
    wait_for(lambda: destinations.sent)
    arn, record = destinations.sent[0]
    assert arn == destination
    assert set(record) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert record["version"] == "1.0"
    assert dt.datetime.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 2,
    }
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert (record["responsePayload"]["errorType"], record["responsePayload"]["requestId"]) == (
        "KeyError",
        request_id,
    )


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def _statistics(cloudwatch: Any, function: str, name: str) -> dict[str, Any]:
    """Sum, SampleCount, Maximum and Unit of one AWS/Lambda metric of `function` (empty: no data)."""
    now = dt.datetime.now(dt.UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName=name,
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - dt.timedelta(minutes=5),
        EndTime=now + dt.timedelta(minutes=5),
        Period=600,
        Statistics=["Sum", "SampleCount", "Maximum"],
    )["Datapoints"]
    if not points:
        return {}
    return {
        "Sum": sum(point["Sum"] for point in points),
        "SampleCount": sum(point["SampleCount"] for point in points),
        "Maximum": max(point["Maximum"] for point in points),
        "Unit": points[0]["Unit"],
    }


def test_invocations_publish_lambdas_metrics_into_cloudwatch(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, cloudwatch: Any
) -> None:
    # Given a working function, a failing one and one reserved at 0 (every invocation throttled)
    metrics = LambdaMetrics(cloudwatch.put_metric_data, interval_seconds=3600)
    runtime = make_runtime(
        spec(code_dir, "environment", "fn-ok"),
        spec(code_dir, "fail", "fn-fail"),
        spec(code_dir, "environment", "fn-off", reserved_concurrency=0),
        metrics=metrics,
    )

    # When each is invoked synchronously, and the working and the throttled one asynchronously
    runtime.invoke("fn-ok", b"{}")
    runtime.invoke("fn-fail", b"{}")
    with pytest.raises(TooManyRequestsError):
        runtime.invoke("fn-off", b"{}")
    runtime.invoke_async("fn-ok", b"{}")
    runtime.invoke_async("fn-off", b"{}")
    wait_for(lambda: runtime.async_invoker.outcomes["succeeded"] == 1)
    metrics.flush()

    # Then AWS/Lambda holds Lambda's metrics per FunctionName, counted and in their units
    def stat(function: str, name: str, *keys: str) -> tuple[Any, ...]:
        found = _statistics(cloudwatch, function, name)
        return tuple(found.get(key) for key in keys)

    assert stat("fn-ok", "Invocations", "Sum", "Unit") == (2.0, "Count")
    assert stat("fn-ok", "Errors", "Sum") == (None,)
    assert stat("fn-ok", "Duration", "SampleCount", "Unit") == (2.0, "Milliseconds")
    assert stat("fn-ok", "ConcurrentExecutions", "Maximum", "Unit") == (1.0, "Count")
    assert stat("fn-ok", "AsyncEventsReceived", "Sum", "Unit") == (1.0, "Count")
    assert stat("fn-ok", "AsyncEventAge", "SampleCount", "Unit") == (1.0, "Milliseconds")
    assert stat("fn-fail", "Invocations", "Sum") + stat("fn-fail", "Errors", "Sum", "Unit") == (
        1.0,
        1.0,
        "Count",
    )
    assert stat("fn-off", "Throttles", "Sum", "Unit") == (1.0, "Count")
    assert stat("fn-off", "Invocations", "Sum") == (None,)
    assert stat("fn-off", "AsyncEventsReceived", "Sum") + stat(
        "fn-off", "AsyncEventsDropped", "Sum", "Unit"
    ) == (
        1.0,
        1.0,
        "Count",
    )


def test_a_functions_embedded_metric_log_lines_become_cloudwatch_metric_data(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, cloudwatch: Any
) -> None:
    # Given a function that logs one embedded-metric-format line per invocation
    metrics = LambdaMetrics(cloudwatch.put_metric_data, interval_seconds=3600)
    runtime = make_runtime(spec(code_dir, "emf", "fn-emf"), metrics=metrics)

    # When it runs three times
    for low in (1, 0, 1):
        invoke(runtime, "fn-emf", {"low": low})

    # Then CloudWatch holds the three data points in the function's namespace, as on AWS, where
    # CloudWatch Logs extracts them (no PutMetricData in the function)
    def low_confidence() -> list[dict[str, Any]]:
        metrics.flush()
        now = dt.datetime.now(dt.UTC)
        points: list[dict[str, Any]] = cloudwatch.get_metric_statistics(
            Namespace="DogBreed",
            MetricName="LowConfidence",
            Dimensions=[{"Name": "service", "Value": "dogbreed"}, {"Name": "EndpointName", "Value": "ep"}],
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=5),
            Period=600,
            Statistics=["Average", "SampleCount"],
        )["Datapoints"]
        return points if points and points[0]["SampleCount"] == 3 else []

    [point] = wait_for(low_confidence)
    assert point["Average"] == pytest.approx(2 / 3)
    assert point["Unit"] == "Count"


# --- the Invoke API through moto ---------------------------------------------------------------------------


@pytest.fixture
def lambda_api(make_runtime: Callable[..., LambdaRuntime], code_dir: Path, cloudwatch: Any) -> Iterator[Any]:
    runtime = make_runtime(
        spec(code_dir, "environment", "fn-ok"),
        spec(code_dir, "fail", "fn-fail"),
        spec(code_dir, "environment", "fn-off", reserved_concurrency=0),
    )
    with moto_shim.installed(None, lambdas=runtime):
        yield boto3.client(
            "lambda", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1})
        )


def test_the_invoke_api_runs_the_function_in_the_runtime(lambda_api: Any) -> None:
    response = lambda_api.invoke(FunctionName="fn-ok", Payload=b"{}")

    assert (response["StatusCode"], response["ExecutedVersion"], "FunctionError" in response) == (
        200,
        "$LATEST",
        False,
    )
    assert json.loads(response["Payload"].read())["context"][0] == "fn-ok"


def test_the_invoke_api_reports_a_function_error_with_its_header(lambda_api: Any) -> None:
    response = lambda_api.invoke(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:fn-fail", Payload=b"{}"
    )

    assert (response["StatusCode"], response["FunctionError"]) == (200, "Unhandled")
    assert json.loads(response["Payload"].read())["errorType"] == "KeyError"


def test_the_invoke_api_throttles_with_429_too_many_requests(lambda_api: Any) -> None:
    with pytest.raises(ClientError) as throttled:
        lambda_api.invoke(FunctionName="fn-off", Payload=b"{}")

    error = throttled.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Reason"]) == (
        429,
        "TooManyRequestsException",
        "ReservedFunctionConcurrentInvocationLimitExceeded",
    )


def test_the_invoke_api_queues_an_event_invocation_and_answers_202(lambda_api: Any) -> None:
    response = lambda_api.invoke(FunctionName="fn-ok", InvocationType="Event", Payload=b"{}")

    assert (response["StatusCode"], response["Payload"].read()) == (202, b"")


def test_the_invoke_api_refuses_a_body_that_is_not_json(lambda_api: Any) -> None:
    with pytest.raises(ClientError) as refused:
        lambda_api.invoke(FunctionName="fn-ok", Payload=b"{not json")

    error = refused.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (
        400,
        "InvalidRequestContentException",
    )


# --- the loopback allowance -------------------------------------------------------------------------------


@pytest.fixture
def image_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"image")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dog.jpg"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("hooks", "expected"), [((LOOPBACK_URLS_HOOK,), {"bytes": 5}), ((), {"refused": "ForbiddenSourceError"})]
)
def test_loopback_image_urls_are_allowed_only_by_the_local_hook(
    make_runtime: Callable[..., LambdaRuntime],
    code_dir: Path,
    image_server: str,
    hooks: tuple[str, ...],
    expected: dict[str, Any],
) -> None:
    # Given a function with the product's URL guard, with or without the local cloud's hook
    for package in ("request_guards", "prediction"):  # the shared layer's guard and its errors
        shutil.copytree(FUNCTIONS_DIR / "shared" / package, code_dir / package)
    runtime = make_runtime(spec(code_dir, "fetch"), worker_hooks=hooks)

    # When it fetches an http:// URL on 127.0.0.1
    result = invoke(runtime, "fn", {"url": image_server})

    # Then only the hook lets it through; the guard's own policy refuses it
    assert result.document() == expected


# --- no process left behind ---------------------------------------------------------------------------------


def test_closing_the_runtime_stops_every_worker(
    make_runtime: Callable[..., LambdaRuntime], code_dir: Path, tmp_path: Path
) -> None:
    # Given two warm workers and one busy in its handler
    runtime = make_runtime(spec(code_dir, "environment", "fn-a"), spec(code_dir, "sleep_forever", "fn-b"))
    runtime.invoke("fn-a", b"{}")
    runtime.invoke("fn-a", b"{}")
    thread, _out = in_thread(lambda: invoke(runtime, "fn-b", {"dir": str(tmp_path)}))
    wait_for(lambda: (tmp_path / "pid").exists())
    pids = runtime.worker_pids()

    # When the runtime closes
    runtime.close()
    thread.join(timeout=30)

    # Then none of them runs any more
    assert len(pids) == 2
    assert [pid for pid in pids if pid_alive(pid)] == []


PARENT_SCRIPT = """
import json, os, signal, sys, threading, time
from pathlib import Path
from dogbreed.local.lambda_runtime.function import FunctionSpec
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime

code, scratch = Path(sys.argv[1]), Path(sys.argv[2])
runtime = LambdaRuntime()
runtime.configure([
    FunctionSpec(name="idle", code_dir=code, handler="handlers.environment"),
    FunctionSpec(name="busy", code_dir=code, handler="handlers.sleep_forever", timeout_seconds=600),
])
runtime.invoke("idle", b"{}")
busy_event = json.dumps({"dir": str(scratch)}).encode()
threading.Thread(target=runtime.invoke, args=("busy", busy_event), daemon=True).start()
while not (scratch / "pid").exists():
    time.sleep(0.01)
print(json.dumps(runtime.worker_pids()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close(), no cleanup
"""


def test_workers_end_when_the_process_that_started_them_dies(code_dir: Path, tmp_path: Path) -> None:
    # Given a process with an idle and a busy worker, killed without cleaning up
    completed = subprocess.run(
        [sys.executable, "-c", PARENT_SCRIPT, str(code_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    pids = json.loads(completed.stdout.strip().splitlines()[-1])

    # Then both workers end by themselves
    assert len(pids) == 2
    wait_for(lambda: not any(pid_alive(pid) for pid in pids))
