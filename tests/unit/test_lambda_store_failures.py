"""When storing a result fails, nothing is left half-done: the API answers 503 with Retry-After and
no orphaned result object, and an S3 drop raises for its trigger to retry, the retry giving exactly
one record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.lambda_world import (
    BUCKET,
    PREDICTIONS_TABLE,
    FakeLambdaContext,
    LambdaWorld,
    handler_module,
    jpeg_bytes,
    load_event,
)

api = handler_module("predict_api")
s3_app = handler_module("predict_s3")

OBJECT_KEY = "incoming/2026/11/22/labrador.jpg"
RESULT_KEY = "results/2026/11/22/labrador.jpg.json"


@contextmanager
def failing(
    client: Any, operation: str, code: str, when: Callable[[dict[str, Any]], bool] = lambda _: True
) -> Iterator[None]:
    """`operation` on `client` raises the service's `code` error (a botocore before-parameter-build hook)."""

    def fail(params: dict[str, Any], **_: Any) -> None:
        if when(params):
            raise ClientError(
                {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                operation,
            )

    event = f"before-parameter-build.{client.meta.service_model.service_name}.{operation}"
    client.meta.events.register(event, fail)
    try:
        yield
    finally:
        client.meta.events.unregister(event, fail)


def predictions_put_fails(world: LambdaWorld) -> Any:
    """The functions' DynamoDB client refuses PutItem on the Predictions table only (the idempotency
    table shares the client and keeps working)."""
    client = api.get_service().store.dynamodb
    return failing(
        client,
        "PutItem",
        "ProvisionedThroughputExceededException",
        when=lambda params: params.get("TableName") == PREDICTIONS_TABLE,
    )


def test_api_store_failure_is_503_with_retry_after_and_no_orphan(world: LambdaWorld) -> None:
    # Given a Predictions table that refuses writes
    with predictions_put_fails(world):
        # When a good image is posted
        response = api.lambda_handler(
            load_event("api_post_predictions_binary_jpeg.json"), FakeLambdaContext()
        )

    # Then the client is told to retry, and neither store keeps anything
    assert response["statusCode"] == 503
    assert '"store_unavailable"' in response["body"]
    assert response["multiValueHeaders"]["Retry-After"] == ["2"]
    assert world.keys("results/") == []
    assert world.prediction_items() == []


def test_s3_drop_store_failure_raises_and_the_retry_stores_one_record(world: LambdaWorld) -> None:
    from prediction.errors import StoreUnavailableError

    # Given an uploaded image and a Predictions table that refuses the first write
    world.put_object(OBJECT_KEY, jpeg_bytes())
    event = load_event("eventbridge_s3_object_created.json")
    with predictions_put_fails(world), pytest.raises(StoreUnavailableError):
        s3_app.lambda_handler(event, FakeLambdaContext())
    assert world.keys("results/") == []

    # When the trigger retries the same event
    outcome = s3_app.lambda_handler(event, FakeLambdaContext())

    # Then exactly one result and one item exist, pointing at each other
    assert outcome["status"] == "predicted"
    assert world.keys("results/") == [RESULT_KEY]
    [item] = world.prediction_items()
    assert item.result_key == RESULT_KEY
    assert world.get_json(RESULT_KEY)["prediction_id"] == item.record.prediction_id


def store_for(world: LambdaWorld) -> Any:
    from prediction.result_store import ResultStore

    return ResultStore(world.s3, world.dynamodb, bucket=BUCKET, table=PREDICTIONS_TABLE, ttl_days=1)


def record() -> Any:
    from prediction.models import Prediction, PredictionRecord

    return PredictionRecord(
        prediction_id="9c8a8a52-5bd4-4c51-a8e2-6f0a8f0e1d11",
        model_version="v1",
        predictions=[Prediction(breed="Labrador_retriever", class_index=95, probability=0.9)],
        created_at=datetime(2026, 11, 22, tzinfo=UTC),
        source="api",
    )


def test_result_object_write_failure_is_store_unavailable_with_no_item(world: LambdaWorld) -> None:
    from prediction.errors import StoreUnavailableError

    store = store_for(world)
    with failing(world.s3, "PutObject", "SlowDown"), pytest.raises(StoreUnavailableError):
        store.save(record(), result_key=RESULT_KEY, input_kind="binary")

    assert world.prediction_items() == []


def test_failed_orphan_removal_still_reports_the_store_error(world: LambdaWorld) -> None:
    from prediction.errors import StoreUnavailableError

    # Given a table that refuses the item and a bucket that refuses the clean-up
    store = store_for(world)
    with (
        failing(world.dynamodb, "PutItem", "InternalServerError"),
        failing(world.s3, "DeleteObject", "InternalError"),
        pytest.raises(StoreUnavailableError) as raised,
    ):
        store.save(record(), result_key=RESULT_KEY, input_kind="binary")

    # Then the caller sees the store error (caused by the item write), not the clean-up's
    cause = raised.value.__cause__
    assert isinstance(cause, ClientError)
    assert cause.response["Error"]["Code"] == "InternalServerError"
