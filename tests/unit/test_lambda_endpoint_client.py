"""The SageMaker endpoint client: contract parsing, bounded retries on throttling and 5xx, error mapping
(botocore Stubber), and a real read timeout against a slow loopback server."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from prediction.endpoint_client import SageMakerEndpointClient, botocore_config
from prediction.errors import EndpointError, EndpointTimeoutError, EndpointUnavailableError
from request_guards.errors import PayloadTooLargeError, UnsupportedMediaTypeError

pytestmark = pytest.mark.usefixtures("aws_credentials")
ENDPOINT = "dogbreed-endpoint"
Runtime = tuple[Any, Stubber, list[float]]
IMAGE = b"\xff\xd8\xff fake jpeg bytes"


def contract_body(predictions: list[tuple[str, int, float]], version: str = "v7") -> dict[str, Any]:
    payload = {
        "model_version": version,
        "predictions": [{"breed": b, "class_index": i, "probability": p} for b, i, p in predictions],
    }
    raw = json.dumps(payload).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def expected_params(top_k: int = 3) -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "Body": IMAGE,
        "ContentType": "image/jpeg",
        "Accept": "application/json",
        "CustomAttributes": f"top_k={top_k}",
    }


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    sleeps: list[float] = []
    with Stubber(client) as stubber:
        yield client, stubber, sleeps
        stubber.assert_no_pending_responses()


def make(client: Any, sleeps: list[float], attempts: int = 3) -> SageMakerEndpointClient:
    return SageMakerEndpointClient(client, ENDPOINT, max_attempts=attempts, sleep=sleeps.append)


def test_success_is_parsed_ranked_and_cut_to_top_k(runtime: Runtime) -> None:
    client, stubber, sleeps = runtime
    stubber.add_response(
        "invoke_endpoint",
        contract_body([("Beagle", 12, 0.1), ("Labrador_retriever", 95, 0.7), ("Poodle", 3, 0.2)]),
        expected_params(top_k=2),
    )

    result = make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=2)

    assert result.model_version == "v7"
    assert [p.breed for p in result.predictions] == ["Labrador_retriever", "Poodle"]


def test_throttling_is_retried_with_backoff_then_succeeds(runtime: Runtime) -> None:
    client, stubber, sleeps = runtime
    stubber.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 429)
    stubber.add_client_error("invoke_endpoint", "ServiceUnavailable", "try later", 503)
    stubber.add_response("invoke_endpoint", contract_body([("Beagle", 12, 0.9)]), expected_params())

    result = make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert result.predictions[0].breed == "Beagle"
    assert len(sleeps) == 2
    assert all(0 <= delay <= 1.0 for delay in sleeps)


def test_retry_budget_is_bounded_and_ends_in_503(runtime: Runtime) -> None:
    client, stubber, sleeps = runtime
    for _ in range(3):
        stubber.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 429)

    with pytest.raises(EndpointUnavailableError) as raised:
        make(client, sleeps, attempts=3).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert raised.value.status == 503
    assert raised.value.retry_after_s > 0
    assert len(sleeps) == 2


def test_model_error_with_client_status_keeps_the_endpoints_code(
    runtime: Runtime,
) -> None:
    client, stubber, sleeps = runtime
    original = json.dumps({"error": {"code": "image_too_large", "message": "the image has too many pixels"}})
    stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (413) from primary",
        424,
        response_meta={},
        modeled_fields={"OriginalStatusCode": 413, "OriginalMessage": original},
    )

    with pytest.raises(PayloadTooLargeError) as raised:
        make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert raised.value.code == "image_too_large"
    assert sleeps == []


def test_model_error_from_the_serving_toolkit_keeps_the_code_and_drops_the_traceback(
    runtime: Runtime,
) -> None:
    """SageMaker's serving toolkit answers a 4xx with the error's message, a newline and the traceback."""
    client, stubber, sleeps = runtime
    error = {"code": "unsupported_content_type", "message": "send image/jpeg or image/png"}
    body = json.dumps({"error": error})
    trace = 'Traceback (most recent call last):\n  File "/opt/ml/model/code/inference.py", line 90\n'
    stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (415) from primary",
        424,
        modeled_fields={"OriginalStatusCode": 415, "OriginalMessage": f"{body}\n{trace}"},
    )

    with pytest.raises(UnsupportedMediaTypeError) as raised:
        make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert raised.value.code == "unsupported_content_type"
    assert raised.value.message == "send image/jpeg or image/png"


def test_model_error_with_opaque_message_is_a_generic_refusal(
    runtime: Runtime,
) -> None:
    client, stubber, sleeps = runtime
    stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (415)",
        424,
        modeled_fields={"OriginalStatusCode": 415, "OriginalMessage": "<html>nope</html>"},
    )

    with pytest.raises(UnsupportedMediaTypeError):
        make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)


def test_model_server_error_is_502_and_not_retried(runtime: Runtime) -> None:
    client, stubber, sleeps = runtime
    stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received server error (500) from primary with message ...",
        424,
        modeled_fields={
            "OriginalStatusCode": 500,
            "OriginalMessage": "Traceback (most recent call last): ...",
        },
    )

    with pytest.raises(EndpointError) as raised:
        make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert raised.value.status == 502
    assert "Traceback" not in raised.value.message
    assert sleeps == []


def test_missing_endpoint_is_503_without_account_or_arn(runtime: Runtime) -> None:
    client, stubber, sleeps = runtime
    stubber.add_client_error(
        "invoke_endpoint",
        "ValidationError",
        f"Endpoint {ENDPOINT} of account 123456789012 not found.",
        400,
    )

    with pytest.raises(EndpointUnavailableError) as raised:
        make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert "123456789012" not in raised.value.message
    assert ENDPOINT not in raised.value.message


def test_response_breaking_the_contract_is_502(runtime: Runtime) -> None:
    client, stubber, sleeps = runtime
    raw = b'{"logits": [1, 2, 3]}'
    stubber.add_response(
        "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(raw), len(raw))}, expected_params()
    )

    with pytest.raises(EndpointError) as raised:
        make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert raised.value.code == "bad_endpoint_response"


class SlowEndpoint:
    """A loopback TCP server that accepts the request and never answers (a hung model)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections.append(conn)

    def close(self) -> None:
        # The accept loop ends before its socket closes: closing it under accept() crashes the thread.
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.connections:
            conn.close()
        self.sock.close()


def test_read_timeout_is_504_and_not_retried() -> None:
    server = SlowEndpoint()
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{server.port}",
        config=botocore_config(connect_timeout=1.0, read_timeout=0.5),
    )
    sleeps: list[float] = []
    try:
        with pytest.raises(EndpointTimeoutError) as raised:
            make(client, sleeps).classify(IMAGE, content_type="image/jpeg", top_k=3)
    finally:
        server.close()

    assert raised.value.status == 504
    assert sleeps == []
    assert len(server.connections) == 1  # one attempt: neither our loop nor botocore retried it


def test_unreachable_endpoint_is_503_after_the_retry_budget() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=botocore_config(connect_timeout=0.5, read_timeout=0.5),
    )
    sleeps: list[float] = []

    with pytest.raises(EndpointUnavailableError):
        make(client, sleeps, attempts=2).classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert len(sleeps) == 1


class FakeClock:
    """Time that advances only when a test says so (each stubbed failure 'takes' `per_call` seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_retry_that_cannot_finish_within_the_budget_is_not_made(runtime: Runtime) -> None:
    # Given a 12 s budget, 10 s attempts, and a first attempt that failed after 4 s
    client, stubber, sleeps = runtime
    clock = FakeClock()
    stubber.add_client_error("invoke_endpoint", "ServiceUnavailable", "try later", 503)
    endpoint = SageMakerEndpointClient(
        client,
        ENDPOINT,
        max_attempts=3,
        attempt_seconds=10.0,
        budget_seconds=12.0,
        sleep=sleeps.append,
        clock=clock,
    )
    original = client.invoke_endpoint

    def slow_failure(**kwargs: Any) -> Any:
        clock.now += 4.0
        return original(**kwargs)

    client.invoke_endpoint = slow_failure

    # When it is classified
    with pytest.raises(EndpointUnavailableError):
        endpoint.classify(IMAGE, content_type="image/jpeg", top_k=3)

    # Then no second attempt was started (4 s + backoff + 10 s > 12 s) and nothing waited
    assert sleeps == []


def test_a_fast_failure_is_retried_within_the_budget(runtime: Runtime) -> None:
    client, stubber, sleeps = runtime
    stubber.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 429)
    stubber.add_response("invoke_endpoint", contract_body([("Beagle", 12, 0.9)]), expected_params())
    endpoint = SageMakerEndpointClient(
        client, ENDPOINT, attempt_seconds=10.0, budget_seconds=12.0, sleep=sleeps.append, clock=FakeClock()
    )

    result = endpoint.classify(IMAGE, content_type="image/jpeg", top_k=3)

    assert result.predictions[0].breed == "Beagle"
    assert len(sleeps) == 1


def test_timeouts_longer_than_the_budget_are_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        SageMakerEndpointClient(None, ENDPOINT, attempt_seconds=13.0, budget_seconds=12.0)
