"""The world the inference handlers are measured in: their environment (bucket, tables, endpoint) and
a loopback stand-in for S3, DynamoDB and the SageMaker runtime that answers at once."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from dogbreed.local.cloud.state import DUMMY_CREDENTIALS

BUCKET = "dogbreed-inference-bench"
STORED_ID = "3f2b8a4e-6c1d-4e7a-9b0f-5d2c1a8e7f60"
ENDPOINT_NAME = "dogbreed-endpoint"
BREEDS = ("Labrador_retriever", "Beagle", "Poodle", "Boxer", "Dalmatian")

FUNCTION_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    **DUMMY_CREDENTIALS,
    "POWERTOOLS_SERVICE_NAME": "dogbreed",
    "POWERTOOLS_METRICS_NAMESPACE": "DogBreed",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "ENDPOINT_NAME": ENDPOINT_NAME,
    "RESULTS_BUCKET": BUCKET,
    "PREDICTIONS_TABLE": "dogbreed-predictions-bench",
    "IDEMPOTENCY_TABLE": "dogbreed-idempotency-bench",
    "ALLOWED_S3_BUCKETS": BUCKET,
}


def photo_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A photo-like JPEG (smooth gradients plus noise), the size of a typical upload."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    pixels = np.clip(base + rng.integers(-20, 20, size=base.shape), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


# --- the loopback stand-in for S3, DynamoDB and the SageMaker runtime ---------------------------------


class _FakeAwsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, each answer would wait 40 ms for an ACK.
    disable_nagle_algorithm = True
    image: bytes = b""

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:  # S3 GetObject
        self._reply(200, self.image, "image/jpeg", {"ETag": '"bench"'})

    def do_PUT(self) -> None:  # S3 PutObject
        self._body()
        self._reply(200, b"", "application/xml", {"ETag": '"bench"'})

    def do_POST(self) -> None:
        self._body()
        if self.path.endswith("/invocations"):  # SageMaker InvokeEndpoint
            predictions = [
                {"breed": breed, "class_index": index, "probability": round(0.5 / (index + 1), 4)}
                for index, breed in enumerate(BREEDS)
            ]
            body = json.dumps({"model_version": "bench-1", "predictions": predictions}).encode()
            self._reply(200, body, "application/json")
            return
        target = self.headers.get("X-Amz-Target", "")
        if target.endswith(".GetItem"):
            item = _stored_item()
            self._reply(200, json.dumps({"Item": item}).encode(), "application/x-amz-json-1.0")
            return
        self._reply(200, b"{}", "application/x-amz-json-1.0")  # PutItem, UpdateItem, DeleteItem


def _stored_item() -> dict[str, Any]:
    """The Predictions item GET /predictions/{id} reads, as the product's store writes it. Imported here,
    in the stand-in's own process: the measured interpreter must import the handler's packages itself."""
    from prediction.item import StoredPrediction, to_item
    from prediction.models import Prediction, PredictionRecord

    record = PredictionRecord(
        prediction_id=STORED_ID,
        model_version="bench-1",
        predictions=[Prediction(breed="Beagle", class_index=1, probability=0.8)],
        created_at=datetime(2026, 11, 22, 3, tzinfo=UTC),
        source="api",
    )
    result_key = f"results/api/{STORED_ID}.json"
    return to_item(StoredPrediction(record, result_key, input_kind="image", expires_at=1795000000))


def _serve_fake_aws() -> None:
    """Entry point of the stand-in's own process: prints its port, serves until killed."""
    handler = type("Handler", (_FakeAwsHandler,), {"image": photo_jpeg()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(server.server_port, flush=True)
    server.serve_forever()


@contextlib.contextmanager
def fake_aws() -> Iterator[str]:
    """The stand-in in a separate process, so it never competes with the measured handler for the GIL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dogbreed.bench.lambda_fake_aws import _serve_fake_aws; _serve_fake_aws()",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
