"""The warm worker: the real handlers invoked in this (fresh) interpreter against the loopback stand-in,
their overhead per scenario with the endpoint call excluded."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dogbreed import FUNCTIONS_DIR, LAMBDA_SHARED_DIR
from dogbreed.bench.lambda_fake_aws import BUCKET, STORED_ID, fake_aws, photo_jpeg


class _Context:
    function_name = "dogbreed-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:dogbreed-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def _api_event(method: str, path: str, resource: str, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": "bench",
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "prod",
        },
        "body": None,
        "isBase64Encoded": False,
    }
    event.update(extra)
    return event


def _with_content_type(event: dict[str, Any], content_type: str) -> dict[str, Any]:
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]
    return event


def _s3_event(key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "000000000000",
        "time": "2026-11-22T03:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": 1000, "etag": uuid.uuid4().hex},
            "request-id": "bench",
            "requester": "000000000000",
            "reason": "PutObject",
        },
    }


def _warm_worker(iterations: int, warmup: int, out: Path) -> None:
    sys.path[:0] = [str(FUNCTIONS_DIR), str(LAMBDA_SHARED_DIR)]
    image = photo_jpeg()
    with fake_aws() as url:
        os.environ["AWS_ENDPOINT_URL"] = url
        from predict_api import app as api_app
        from predict_s3 import app as s3_app
        from prediction.dependencies import build_service, use_service
        from prediction.endpoint_client import SageMakerEndpointClient
        from prediction.settings import get_settings

        endpoint_ms: list[float] = []
        real = api_app.get_service().endpoint
        assert isinstance(real, SageMakerEndpointClient)

        class TimedEndpoint:
            def classify(self, data: bytes, *, content_type: str, top_k: int) -> Any:
                start = time.perf_counter()
                try:
                    return real.classify(data, content_type=content_type, top_k=top_k)
                finally:
                    endpoint_ms.append((time.perf_counter() - start) * 1000)

        use_service(build_service(get_settings(), endpoint=TimedEndpoint()))
        encoded = base64.b64encode(image).decode()
        scenarios: dict[str, Callable[[], dict[str, Any]]] = {
            "POST /predictions binary JPEG": lambda: _with_content_type(
                _api_event("POST", "/predictions", "/predictions", body=encoded, isBase64Encoded=True),
                "image/jpeg",
            ),
            "POST /predictions JSON base64": lambda: _with_content_type(
                _api_event("POST", "/predictions", "/predictions", body=json.dumps({"image": encoded})),
                "application/json",
            ),
            "GET /predictions/{id}": lambda: _api_event(
                "GET",
                f"/predictions/{STORED_ID}",
                "/predictions/{prediction_id}",
                pathParameters={"prediction_id": STORED_ID},
            ),
            "GET /health": lambda: _api_event("GET", "/health", "/health"),
            "S3 Object Created (idempotent)": lambda: _s3_event(f"incoming/bench/{uuid.uuid4().hex}.jpg"),
        }
        results: dict[str, Any] = {"image_bytes": len(image), "scenarios": {}}
        context = _Context()
        for name, make_event in scenarios.items():
            handler = s3_app.lambda_handler if name.startswith("S3") else api_app.lambda_handler
            overheads: list[float] = []
            for index in range(warmup + iterations):
                event = make_event()
                endpoint_ms.clear()
                with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                    start = time.perf_counter()
                    response = handler(event, context)
                    total = (time.perf_counter() - start) * 1000
                status = response.get("statusCode", 200) if isinstance(response, dict) else 200
                if int(status) >= 400 or (
                    isinstance(response, dict) and response.get("status") == "rejected"
                ):
                    raise RuntimeError(f"{name}: unexpected response {str(response)[:300]}")
                if index >= warmup:
                    overheads.append(total - sum(endpoint_ms))
            results["scenarios"][name] = {
                "n": len(overheads),
                "p50_ms": _percentile(overheads, 50),
                "p99_ms": _percentile(overheads, 99),
                "mean_ms": statistics.fmean(overheads),
            }
    out.write_text(json.dumps(results))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]
