"""The Lambda functions' world for tests (test_lambda_*.py, the fuzz targets): their environment,
moto resources built from template.yaml, a scriptable fake endpoint, a Lambda context and tiny images.

`lambda_world()` applies the functions' environment (with the fake credentials) while the handler
modules are imported inside `mock_aws`, so every boto3 client the handlers create is intercepted.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import moto  # noqa: F401 - must be imported before the handlers create their clients
from moto import mock_aws
from PIL import Image

from dogbreed import REPO_ROOT
from tests.support.credentials import FAKE_CREDENTIALS

if TYPE_CHECKING:
    from prediction.item import StoredPrediction
from tests.support.templates import load_template

EVENTS_DIR = REPO_ROOT / "events"
# The events/ fixtures name this bucket; the tests' environment points the functions at it.
BUCKET = "dogbreed-inference-dev"
PREDICTIONS_TABLE = "dogbreed-predictions-test"
IDEMPOTENCY_TABLE = "dogbreed-idempotency-test"
ACCOUNT_ID = "123456789012"
MAX_IMAGE_BYTES = 256 * 1024
LABRADOR_URL = "https://images.example.com/dogs/labrador.jpg"

# The functions' environment, applied while their modules are imported (they parse it at import), with
# the fake credentials (moto only; nothing leaves the machine).
FUNCTION_ENV = {
    **FAKE_CREDENTIALS,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "dogbreed",
    "POWERTOOLS_METRICS_NAMESPACE": "DogBreed",
    "ENDPOINT_NAME": "dogbreed-endpoint",
    "RESULTS_BUCKET": BUCKET,
    "PREDICTIONS_TABLE": PREDICTIONS_TABLE,
    "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
    "ALLOWED_S3_BUCKETS": BUCKET,
    "PREDICTION_TTL_DAYS": "7",
    "CORS_ALLOW_ORIGIN": "https://app.example.com",
    "MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
    "LOW_CONFIDENCE_PROBABILITY": "0.5",
    # The drift monitor reads captures from this bucket (none in the world: an empty window).
    "CAPTURE_BUCKET": BUCKET,
}
# Packages whose modules read the environment at import, or keep clients made from it (aws_clients).
# request_guards does neither, and stays shared.
HANDLER_PACKAGES = ("predict_api", "predict_s3", "prediction", "monitor_drift", "aws_clients")

BREEDS = tuple(f"Breed_{index:03d}" for index in range(12))


def jpeg_bytes(color: tuple[int, int, int] = (180, 120, 60), size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def png_bytes(size: tuple[int, int] = (48, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class FakeEndpoint:
    """The endpoint client's interface with scripted failures; answers depend on the image bytes.
    The top answer's probability is 0.32 (1/rank weights over 12 breeds) unless `top_probability`
    sets it (the rest share what is left)."""

    model_version: str = "fake-1"
    failures: list[Exception] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)
    top_probability: float | None = None

    def classify(self, image: bytes, *, content_type: str, top_k: int) -> Any:
        from prediction.models import EndpointResult, Prediction

        self.requests.append((content_type, top_k))
        if self.failures:
            raise self.failures.pop(0)
        digest = hashlib.sha256(image).digest()
        first = digest[0] % len(BREEDS)
        weights = [1.0 / (rank + 1) for rank in range(len(BREEDS))]
        if self.top_probability is not None:
            rest = sum(weights[1:]) / (1.0 - self.top_probability)
            weights[0] = self.top_probability * rest
        total = sum(weights)
        predictions = [
            Prediction(
                breed=BREEDS[(first + rank) % len(BREEDS)],
                class_index=(first + rank) % len(BREEDS),
                probability=weights[rank] / total,
            )
            for rank in range(len(BREEDS))
        ]
        return EndpointResult(model_version=self.model_version, predictions=predictions[:top_k])


@dataclass
class FakeLambdaContext:
    function_name: str = "dogbreed-predict"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:dogbreed-predict"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    log_group_name: str = "/aws/lambda/dogbreed-predict"
    log_stream_name: str = "2026/11/22/[$LATEST]abc"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def event_files() -> list[Path]:
    return sorted(EVENTS_DIR.glob("*.json"))


@lru_cache(maxsize=1)
def template_resources() -> dict[str, Any]:
    resources: dict[str, Any] = load_template()["Resources"]
    return resources


def _create_table_from_template(client: Any, logical_id: str, table_name: str) -> None:
    properties = template_resources()[logical_id]["Properties"]
    client.create_table(
        TableName=table_name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class LambdaWorld:
    """Moto resources plus the service wired with a fake endpoint and a replaceable URL fetcher."""

    s3: Any
    dynamodb: Any
    endpoint: FakeEndpoint
    api: ModuleType | None = None
    s3_handler: ModuleType | None = None
    urls: dict[str, bytes] = field(default_factory=dict)
    fetcher: Callable[[str], bytes] | None = None

    def fetch(self, url: str) -> bytes:
        from request_guards.errors import FetchError

        if self.fetcher is not None:
            return self.fetcher(url)
        if url not in self.urls:
            raise FetchError("the URL answered HTTP 404", code="url_http_error")
        return self.urls[url]

    def reset(self) -> None:
        """Empty the bucket and both tables and forget scripted failures (between tests)."""
        for key in self.keys():
            self.s3.delete_object(Bucket=BUCKET, Key=key)
        for table, key_name in ((PREDICTIONS_TABLE, "prediction_id"), (IDEMPOTENCY_TABLE, "id")):
            for item in self.dynamodb.scan(TableName=table)["Items"]:
                self.dynamodb.delete_item(TableName=table, Key={key_name: item[key_name]})
        self.endpoint.failures.clear()
        self.endpoint.requests.clear()
        self.endpoint.top_probability = None
        self.urls = {LABRADOR_URL: jpeg_bytes()}
        self.fetcher = None

    def put_object(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def get_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def keys(self, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def prediction_items(self) -> list[StoredPrediction]:
        """The Predictions table's items (this world's own scan), decoded with the table's mapper."""
        from prediction.item import from_item

        return [from_item(item) for item in self.dynamodb.scan(TableName=PREDICTIONS_TABLE)["Items"]]


def _drop_handler_modules() -> None:
    for name in [name for name in sys.modules if name.split(".")[0] in HANDLER_PACKAGES]:
        del sys.modules[name]


@contextmanager
def _function_environment() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in FUNCTION_ENV}
    os.environ.update(FUNCTION_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def lambda_world() -> Iterator[LambdaWorld]:
    """Inside `mock_aws`: the inference bucket and both tables (key schemas from template.yaml), the
    handler modules imported fresh under FUNCTION_ENV, and the container's service built with a
    FakeEndpoint and the world's URL fetcher. Use it once per test module and `reset()` it between
    tests (moto set-up is the slow part).

    The handlers parse their environment at import, as in Lambda. Another suite (the local cloud) may
    have imported them under its own environment, so they are imported afresh here and dropped again
    afterwards, leaving the next suite a clean import.
    """
    _drop_handler_modules()
    try:
        with _function_environment(), mock_aws():
            api = importlib.import_module("predict_api.app")
            s3_app = importlib.import_module("predict_s3.app")
            importlib.import_module("monitor_drift.app")
            from prediction.dependencies import build_service, use_service
            from prediction.settings import get_settings

            s3 = boto3.client("s3")
            dynamodb = boto3.client("dynamodb")
            s3.create_bucket(Bucket=BUCKET)
            _create_table_from_template(dynamodb, "PredictionsTable", PREDICTIONS_TABLE)
            _create_table_from_template(dynamodb, "IdempotencyTable", IDEMPOTENCY_TABLE)
            world = LambdaWorld(s3=s3, dynamodb=dynamodb, endpoint=FakeEndpoint(), api=api, s3_handler=s3_app)
            world.reset()
            use_service(build_service(get_settings(), endpoint=world.endpoint, url_fetcher=world.fetch))
            yield world
    finally:
        _drop_handler_modules()


class HandlerModule:
    """`predict_api.app` / `predict_s3.app` / `monitor_drift.app` as imported by the active
    `lambda_world` (attribute access is resolved at call time)."""

    def __init__(self, package: str) -> None:
        self._module_name = f"{package}.app"

    def __getattr__(self, attribute: str) -> Any:
        module = sys.modules.get(self._module_name)
        if module is None:
            raise RuntimeError(f"{self._module_name} is only importable inside lambda_world()")
        return getattr(module, attribute)


def handler_module(package: str) -> Any:
    return HandlerModule(package)
