"""The local SageMaker's data capture follows the endpoint config: the sampling percentage, the
capture options, the content types captured as text, SSE-KMS with a KmsKeyId, and the model's
execution role; its objects parse with the product's capture parser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from model_monitor.capture import parse_lines

from dogbreed.local.sagemaker.data_capture import CaptureWriter, Invocation

WHEN = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
INVOCATION = Invocation(
    endpoint="dogs",
    variant="AllTraffic",
    model_name="model-1",
    request_body=b"\xff\xd8jpeg bytes",
    request_content_type="image/jpeg",
    response_body=b'{"model_version": "model-1", "predictions": []}',
    response_content_type="application/json",
)


class FakeStores:
    """The endpoint, its config and model, and the S3 client of each role (what the writer reads)."""

    def __init__(self, capture: dict[str, Any] | None) -> None:
        self.capture = capture
        self.puts: list[tuple[str, dict[str, Any]]] = []

    def find(self, name: str) -> Any:
        return SimpleNamespace(config_name="config-1") if name == "dogs" else None

    def config(self, name: str, operation: str) -> dict[str, Any]:
        return {"EndpointConfigName": name, **({"DataCaptureConfig": self.capture} if self.capture else {})}

    def model(self, name: str, operation: str) -> dict[str, Any]:
        return {"ModelName": name, "ExecutionRoleArn": "arn:aws:iam::123456789012:role/sm"}

    def role_clients(self, role: str) -> Any:
        def client(service: str) -> Any:
            return SimpleNamespace(put_object=lambda **request: self.puts.append((role, request)))

        return client


def config(**changes: Any) -> dict[str, Any]:
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://data/data-capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        **changes,
    }


@pytest.fixture
def writer_for() -> Iterator[Any]:
    writers: list[CaptureWriter] = []

    def build(stores: FakeStores, draw: float = 0.5) -> CaptureWriter:
        writer = CaptureWriter(stores, stores, stores.role_clients, interval_seconds=60, draw=lambda: draw)  # type: ignore[arg-type]
        writers.append(writer)
        return writer

    yield build
    for writer in writers:
        writer.close()


def test_a_captured_invocation_is_sagemakers_record_under_its_hour(writer_for: Any) -> None:
    stores = FakeStores(config())
    writer = writer_for(stores)

    assert writer.record(INVOCATION, WHEN)
    assert writer.flush() == 1

    ((role, request),) = stores.puts
    assert role == "arn:aws:iam::123456789012:role/sm"
    assert request["Bucket"] == "data"
    assert request["Key"].startswith("data-capture/dogs/AllTraffic/2026/11/22/09/")
    assert "ServerSideEncryption" not in request
    (record,) = parse_lines(request["Body"].decode().splitlines()).records
    assert record.endpoint_input is not None and record.endpoint_input.encoding == "BASE64"
    assert record.endpoint_input.body() == INVOCATION.request_body
    assert record.endpoint_output is not None and record.endpoint_output.encoding == "JSON"
    assert record.inference_time == WHEN


def test_sampling_options_and_kms_follow_the_config(writer_for: Any) -> None:
    sampled_out = FakeStores(config(InitialSamplingPercentage=40))
    input_only = FakeStores(config(CaptureOptions=[{"CaptureMode": "Input"}], KmsKeyId="arn:aws:kms:k"))
    disabled = FakeStores(config(EnableCapture=False))

    assert not writer_for(sampled_out, draw=0.5).record(INVOCATION, WHEN)  # 50 >= 40 %
    assert not writer_for(disabled).record(INVOCATION, WHEN)
    assert not writer_for(FakeStores(None)).record(INVOCATION, WHEN)
    writer = writer_for(input_only)
    assert writer.record(INVOCATION, WHEN)
    writer.flush()

    ((_, request),) = input_only.puts
    assert (request["ServerSideEncryption"], request["SSEKMSKeyId"]) == ("aws:kms", "arn:aws:kms:k")
    (record,) = parse_lines(request["Body"].decode().splitlines()).records
    assert record.endpoint_output is None and record.endpoint_input is not None
