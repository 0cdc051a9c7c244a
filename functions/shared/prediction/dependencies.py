"""Builds the service and its AWS clients once per container. Tests and the benchmark hand in a
service with a fake endpoint through `use_service()`."""

from __future__ import annotations

import boto3
from botocore.config import Config

from prediction.endpoint_client import (
    ENDPOINT_BUDGET_SECONDS,
    EndpointClient,
    SageMakerEndpointClient,
    botocore_config,
)
from prediction.image_source import ImageSource, UrlFetcher, guarded_url_fetcher
from prediction.observability import ConfidenceWatch
from prediction.result_store import ResultStore
from prediction.service import PredictionService
from prediction.settings import Settings, get_settings

# S3 and DynamoDB: short timeouts, botocore's standard retry mode (throttling and 5xx, with backoff),
# two attempts per call: one call's worst case (2 x (1 + 2) s + <= 1 s backoff) fits the request budget
# next to the URL fetch and the endpoint (tests/unit/test_request_budget.py).
AWS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"})

_service: PredictionService | None = None


def build_service(
    settings: Settings,
    *,
    endpoint: EndpointClient | None = None,
    url_fetcher: UrlFetcher | None = None,
) -> PredictionService:
    s3_client = boto3.client("s3", config=AWS_CONFIG)
    store = ResultStore(
        s3_client,
        boto3.client("dynamodb", config=AWS_CONFIG),
        bucket=settings.results_bucket,
        table=settings.predictions_table,
        ttl_days=settings.prediction_ttl_days,
    )
    if endpoint is None:
        runtime = boto3.client(
            "sagemaker-runtime",
            config=botocore_config(
                connect_timeout=settings.endpoint_connect_timeout, read_timeout=settings.endpoint_read_timeout
            ),
        )
        endpoint = SageMakerEndpointClient(
            runtime,
            settings.endpoint_name,
            max_attempts=settings.endpoint_max_attempts,
            attempt_seconds=settings.endpoint_connect_timeout + settings.endpoint_read_timeout,
            budget_seconds=ENDPOINT_BUDGET_SECONDS,
        )
    images = ImageSource(
        max_image_bytes=settings.max_image_bytes,
        allowed_s3_buckets=settings.allowed_s3_buckets,
        s3_client=s3_client,
        url_fetcher=url_fetcher
        or guarded_url_fetcher(max_bytes=settings.max_image_bytes, timeout=settings.url_fetch_timeout),
    )
    confidence = ConfidenceWatch(settings.endpoint_name, settings.low_confidence_probability)
    return PredictionService(endpoint=endpoint, store=store, images=images, confidence=confidence)


def get_service() -> PredictionService:
    global _service
    if _service is None:
        _service = build_service(get_settings())
    return _service


def use_service(service: PredictionService | None) -> None:
    """Replace the container's service (None: rebuild from settings on next use)."""
    global _service
    _service = service
