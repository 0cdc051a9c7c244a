"""predict_s3: results and rejections in the bucket, one Predictions item per object version even
for duplicated or retried events, and transient failures raised for the trigger to retry."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.lambda_world import (
    IDEMPOTENCY_TABLE,
    MAX_IMAGE_BYTES,
    FakeLambdaContext,
    LambdaWorld,
    handler_module,
    jpeg_bytes,
    load_event,
)

app = handler_module("predict_s3")

OBJECT_KEY = "incoming/2026/11/22/labrador.jpg"
RESULT_KEY = "results/2026/11/22/labrador.jpg.json"
BAD_KEY = "incoming/2026/11/22/not-a-dog.jpg"


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = app.lambda_handler(event, FakeLambdaContext())
    return result


def event_for(key: str, *, event_id: str = "0b0b0b0b-1111-2222-3333-444444444444") -> dict[str, Any]:
    event = copy.deepcopy(load_event("eventbridge_s3_object_created.json"))
    event["id"] = event_id
    event["detail"]["object"]["key"] = key
    return event


def test_object_created_event_writes_result_json_and_one_item(world: LambdaWorld) -> None:
    world.put_object(OBJECT_KEY, jpeg_bytes())

    outcome = invoke(load_event("eventbridge_s3_object_created.json"))

    assert outcome["status"] == "predicted"
    assert outcome["output_key"] == RESULT_KEY
    document = world.get_json(RESULT_KEY)
    assert document["prediction_id"] == outcome["prediction_id"]
    assert document["source"] == "s3"
    assert len(document["predictions"]) == 3
    [item] = world.prediction_items()
    assert item.record.prediction_id == outcome["prediction_id"]
    assert item.result_key == RESULT_KEY
    assert world.keys("rejected/") == []


def test_duplicate_event_creates_no_second_record(world: LambdaWorld) -> None:
    world.put_object(OBJECT_KEY, jpeg_bytes())

    first = invoke(load_event("eventbridge_s3_object_created.json"))
    stored = world.get_json(RESULT_KEY)
    second = invoke(load_event("eventbridge_s3_object_created_duplicate.json"))

    assert second == first
    assert len(world.prediction_items()) == 1
    assert world.keys("results/") == [RESULT_KEY]
    # The duplicate replayed the stored outcome: the result was not recomputed or rewritten.
    assert world.get_json(RESULT_KEY) == stored
    [record] = world.dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    assert record["status"]["S"] == "COMPLETED"


def test_bad_image_event_is_rejected_with_its_reason_and_not_retried(world: LambdaWorld) -> None:
    world.put_object(BAD_KEY, b"this is not an image")

    outcome = invoke(load_event("eventbridge_s3_object_created_bad_image.json"))

    assert outcome["status"] == "rejected"
    rejected = world.get_json("rejected/2026/11/22/not-a-dog.jpg.json")
    assert rejected["source_key"] == BAD_KEY
    assert rejected["reason"]["code"] == "not_an_image"
    assert rejected["reason"]["message"]
    assert world.prediction_items() == []
    assert world.endpoint.requests == []
    # A redelivery replays the recorded outcome: no second rejection, no exception.
    assert invoke(load_event("eventbridge_s3_object_created_bad_image.json")) == outcome


def test_too_large_object_is_rejected(world: LambdaWorld) -> None:
    world.put_object("incoming/huge.jpg", jpeg_bytes() + b"\0" * MAX_IMAGE_BYTES)

    outcome = invoke(event_for("incoming/huge.jpg"))

    assert outcome["status"] == "rejected"
    assert world.get_json("rejected/huge.jpg.json")["reason"]["code"] == "body_too_large"


def test_object_deleted_before_processing_is_rejected(world: LambdaWorld) -> None:
    outcome = invoke(event_for("incoming/gone.jpg"))

    assert outcome["status"] == "rejected"
    assert world.get_json("rejected/gone.jpg.json")["reason"]["code"] == "object_not_found"


def test_endpoint_refusal_is_a_rejection(world: LambdaWorld) -> None:
    from request_guards.errors import UnsupportedMediaTypeError

    world.put_object(OBJECT_KEY, jpeg_bytes())
    world.endpoint.failures.append(UnsupportedMediaTypeError("not a photo", code="not_an_image"))

    outcome = invoke(load_event("eventbridge_s3_object_created.json"))

    assert outcome["status"] == "rejected"
    assert world.prediction_items() == []


def test_transient_failure_raises_then_the_retry_stores_one_record(world: LambdaWorld) -> None:
    from prediction.errors import EndpointUnavailableError

    world.put_object(OBJECT_KEY, jpeg_bytes())
    world.endpoint.failures.append(EndpointUnavailableError("the model endpoint is busy"))

    with pytest.raises(EndpointUnavailableError):
        invoke(load_event("eventbridge_s3_object_created.json"))
    assert world.prediction_items() == []
    assert world.keys("results/") == []

    retried = invoke(load_event("eventbridge_s3_object_created.json"))

    assert retried["status"] == "predicted"
    assert len(world.prediction_items()) == 1
    assert world.keys() == [OBJECT_KEY, RESULT_KEY]


def test_endpoint_timeout_raises_for_the_trigger_to_retry(world: LambdaWorld) -> None:
    from prediction.errors import EndpointTimeoutError

    world.put_object(OBJECT_KEY, jpeg_bytes())
    world.endpoint.failures.append(EndpointTimeoutError("the model endpoint did not answer in time"))

    with pytest.raises(EndpointTimeoutError):
        invoke(load_event("eventbridge_s3_object_created.json"))

    assert world.keys("rejected/") == []
    assert invoke(load_event("eventbridge_s3_object_created.json"))["status"] == "predicted"


def test_new_version_of_the_same_key_is_a_new_prediction(world: LambdaWorld) -> None:
    world.put_object(OBJECT_KEY, jpeg_bytes())
    first = invoke(load_event("eventbridge_s3_object_created.json"))
    changed = load_event("eventbridge_s3_object_created.json")
    changed["detail"]["object"]["etag"] = "0" * 32

    second = invoke(changed)

    assert second["prediction_id"] != first["prediction_id"]
    assert len(world.prediction_items()) == 2


def test_key_outside_incoming_is_ignored_not_failed(world: LambdaWorld) -> None:
    outcome = invoke(event_for("elsewhere/dog.jpg"))

    assert outcome["status"] == "ignored"
    assert outcome["reason"] == "outside_incoming_prefix"
    assert world.keys() == []


def test_malformed_event_raises(world: LambdaWorld) -> None:
    from aws_lambda_powertools.utilities.parser import ValidationError

    event = load_event("eventbridge_s3_object_created.json")
    del event["detail"]["bucket"]

    with pytest.raises(ValidationError):
        invoke(event)
