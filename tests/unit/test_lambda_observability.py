"""Logs carry the correlation id (API request id / EventBridge event id); EMF metrics carry bounded
dimensions: Predictions and latencies by Source, Rejections by Source and Reason, LowConfidence by
endpoint (as the stack's alarm reads it), plus ColdStart."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws_metric_catalog import CATALOG
from tests.support.lambda_world import (
    FUNCTION_ENV,
    FakeLambdaContext,
    LambdaWorld,
    handler_module,
    jpeg_bytes,
    load_event,
)

api = handler_module("predict_api")
s3 = handler_module("predict_s3")


@pytest.fixture
def log_lines() -> Iterator[list[dict[str, Any]]]:
    """The functions' structured log lines, formatted by the Powertools formatter."""
    from prediction.observability import logger

    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Collect()
    handler.setFormatter(logger.registered_formatter)
    stdlib_logger = logging.getLogger(logger.name)
    stdlib_logger.addHandler(handler)
    try:
        yield lines
    finally:
        stdlib_logger.removeHandler(handler)


def emf_blobs(output: str) -> list[dict[str, Any]]:
    blobs = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def metric_dimensions(blobs: list[dict[str, Any]], name: str) -> list[dict[str, str]]:
    found = []
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            if any(metric["Name"] == name for metric in directive["Metrics"]):
                [dimension_set] = directive["Dimensions"]
                found.append({key: blob[key] for key in dimension_set})
    return found


def test_api_logs_use_the_request_id_as_correlation_id(
    world: LambdaWorld, log_lines: list[dict[str, Any]]
) -> None:
    event = load_event("api_post_predictions_url.json")
    event["body"] = "{broken"

    api.lambda_handler(event, FakeLambdaContext())

    [line] = [line for line in log_lines if line["message"] == "request rejected"]
    assert line["correlation_id"] == event["requestContext"]["requestId"]


def test_s3_logs_use_the_event_id_as_correlation_id(
    world: LambdaWorld, log_lines: list[dict[str, Any]]
) -> None:
    world.put_object("incoming/2026/11/22/labrador.jpg", jpeg_bytes())
    event = load_event("eventbridge_s3_object_created.json")

    s3.lambda_handler(event, FakeLambdaContext())

    [line] = [line for line in log_lines if line["message"] == "object processed"]
    assert line["correlation_id"] == event["id"]
    assert line["object_key"] == "incoming/2026/11/22/labrador.jpg"


def test_prediction_metrics_are_dimensioned_by_source_only(
    world: LambdaWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    api.lambda_handler(load_event("api_post_predictions_binary_jpeg.json"), FakeLambdaContext())

    blobs = emf_blobs(capsys.readouterr().out)

    for name in ("Predictions", "PredictionLatency", "EndpointLatency"):
        assert metric_dimensions(blobs, name) == [{"service": "dogbreed", "Source": "api"}]
    [blob] = [b for b in blobs if "Predictions" in b]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DogBreed"
    assert blob["Predictions"] == [1.0]


def test_rejections_are_dimensioned_by_source_and_reason(
    world: LambdaWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put_object("incoming/2026/11/22/not-a-dog.jpg", b"not an image")
    event = load_event("api_post_predictions_url.json")
    event["body"] = "{broken"

    api.lambda_handler(event, FakeLambdaContext())
    s3.lambda_handler(load_event("eventbridge_s3_object_created_bad_image.json"), FakeLambdaContext())

    dimensions = metric_dimensions(emf_blobs(capsys.readouterr().out), "Rejections")
    assert {"service": "dogbreed", "Source": "api", "Reason": "bad_request"} in dimensions
    assert {"service": "dogbreed", "Source": "s3", "Reason": "unsupported_media_type"} in dimensions


@pytest.mark.parametrize(("top_probability", "low"), [(0.9, 0.0), (0.2, 1.0)], ids=["confident", "unsure"])
def test_each_answer_publishes_low_confidence_per_endpoint(
    world: LambdaWorld, capsys: pytest.CaptureFixture[str], top_probability: float, low: float
) -> None:
    # Given a model whose top answer has this probability (LOW_CONFIDENCE_PROBABILITY 0.5)
    world.endpoint.top_probability = top_probability

    api.lambda_handler(load_event("api_post_predictions_binary_jpeg.json"), FakeLambdaContext())

    # Then one LowConfidence datum, 1 for an unsure answer and 0 for a confident one, dimensioned as
    # the catalog (and so the template's LowConfidenceAnswersAlarm) expects
    blobs = emf_blobs(capsys.readouterr().out)
    [dimensions] = metric_dimensions(blobs, "LowConfidence")
    assert dimensions == {"service": "dogbreed", "EndpointName": FUNCTION_ENV["ENDPOINT_NAME"]}
    assert frozenset(dimensions) in CATALOG["DogBreed"].dimension_sets
    [blob] = [b for b in blobs if "LowConfidence" in b]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DogBreed"
    assert blob["LowConfidence"] in (low, [low])
