"""Every file in events/ goes through the handler it is written for (the same files `sam local
invoke -e` uses). A new event file without an expectation here fails the suite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.lambda_world import (
    FakeLambdaContext,
    LambdaWorld,
    event_files,
    handler_module,
    jpeg_bytes,
    load_event,
)

api = handler_module("predict_api")
s3 = handler_module("predict_s3")
monitor = handler_module("monitor_drift")

# file -> (handler, expected HTTP status or S3 outcome status)
EXPECTED: dict[str, tuple[str, Any]] = {
    "api_get_health.json": ("api", 200),
    "api_get_openapi.json": ("api", 200),
    "api_get_prediction.json": ("api", 200),
    "api_post_predictions_binary_jpeg.json": ("api", 201),
    "api_post_predictions_binary_png.json": ("api", 201),
    "api_post_predictions_image_base64.json": ("api", 201),
    "api_post_predictions_s3_uri.json": ("api", 201),
    "api_post_predictions_url.json": ("api", 201),
    "legacy_invoke_url.json": ("legacy", None),
    "eventbridge_s3_object_created.json": ("s3", "predicted"),
    "eventbridge_s3_object_created_duplicate.json": ("s3", "predicted"),
    "eventbridge_s3_object_created_bad_image.json": ("s3", "rejected"),
    "eventbridge_scheduled_monitor.json": ("monitor", "no-data"),
}


def seed(world: LambdaWorld) -> None:
    """The objects and the stored prediction that the event files refer to."""
    from prediction.dependencies import get_service
    from prediction.models import Prediction, PredictionRecord

    world.put_object("uploads/beagle.jpg", jpeg_bytes((10, 200, 30)))
    world.put_object("incoming/2026/11/22/labrador.jpg", jpeg_bytes())
    world.put_object("incoming/2026/11/22/not-a-dog.jpg", b"plain text, not a dog")
    stored_id = load_event("api_get_prediction.json")["pathParameters"]["prediction_id"]
    record = PredictionRecord(
        prediction_id=stored_id,
        model_version="fake-1",
        predictions=[Prediction(breed="Beagle", class_index=12, probability=0.8)],
        created_at=datetime.now(UTC),
        source="api",
    )
    get_service().store.save(record, result_key=f"results/api/{stored_id}.json", input_kind="binary")


def test_every_event_file_has_an_expectation() -> None:
    assert sorted(path.name for path in event_files()) == sorted(EXPECTED)


@pytest.mark.parametrize("path", event_files(), ids=lambda path: path.name)
def test_event_file_through_its_handler(world: LambdaWorld, path: Path) -> None:
    seed(world)
    kind, expected = EXPECTED[path.name]
    event = load_event(path.name)

    if kind == "monitor":
        summary = monitor.lambda_handler(event, FakeLambdaContext())
        assert summary["status"] == expected
        assert summary["window_end"] == "2026-11-22T10:00:00+00:00"
    elif kind == "s3":
        outcome = s3.lambda_handler(event, FakeLambdaContext())
        assert outcome["status"] == expected
    elif kind == "legacy":
        body = api.lambda_handler(event, FakeLambdaContext())
        assert set(body) >= {"prediction_id", "model_version", "predictions", "created_at"}
    else:
        response = api.lambda_handler(event, FakeLambdaContext())
        assert response["statusCode"] == expected, response["body"]
