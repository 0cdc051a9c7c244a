"""`dogbreed bench lambda`: what the inference functions add on top of the model endpoint.

Warm overhead: the real handlers (`predict_api`, `predict_s3`) run in a fresh interpreter with the
real boto3 clients pointed (AWS_ENDPOINT_URL) at a loopback server that plays S3, DynamoDB and the
SageMaker endpoint and answers at once. Each invocation's handler time minus its endpoint call
(timed around `classify`) is the overhead: event parsing, validation, the image check, the S3 and
DynamoDB client calls (request building, signing, loopback round trip), logging and EMF metrics.
Real network latency to S3/DynamoDB is not included. Tracing is disabled for the warm runs (no
X-Ray daemon here).

Cold init: importing each handler module in a fresh interpreter, up to ready (settings parsed,
clients and service built), with the Tracer enabled as in Lambda; reported beside the bare
Powertools import (Logger, Metrics, Tracer, the REST resolver) in a fresh interpreter.

Targets (printed, not asserted): warm p50 < 5 ms and p99 < 20 ms; cold init < 400 ms.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.server
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dogbreed import FUNCTIONS_DIR, LAMBDA_SHARED_DIR
from dogbreed.local.cloud.state import DUMMY_CREDENTIALS

TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0
TARGET_COLD_MS = 400.0
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

BARE_POWERTOOLS = (
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "Logger(); Metrics(); Tracer(); APIGatewayRestResolver(enable_validation=True)\n"
)
# What the handlers build at init besides Powertools: most of it is parsing the S3 service model.
BOTO3_CLIENTS = "import boto3\nfor name in ('s3', 'dynamodb', 'sagemaker-runtime'): boto3.client(name)\n"


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
            item = {
                "prediction_id": {"S": STORED_ID},
                "model_version": {"S": "bench-1"},
                "predictions": {
                    "L": [
                        {
                            "M": {
                                "breed": {"S": "Beagle"},
                                "class_index": {"N": "1"},
                                "probability": {"N": "0.8"},
                            }
                        }
                    ]
                },
                "created_at": {"S": "2026-11-22T03:00:00+00:00"},
                "source": {"S": "api"},
            }
            self._reply(200, json.dumps({"Item": item}).encode(), "application/x-amz-json-1.0")
            return
        self._reply(200, b"{}", "application/x-amz-json-1.0")  # PutItem, UpdateItem, DeleteItem


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
        [sys.executable, "-c", "from dogbreed.bench.lambda_bench import _serve_fake_aws; _serve_fake_aws()"],
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


# --- the warm worker (runs in a fresh interpreter) ------------------------------------------------------


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


# --- cold init ----------------------------------------------------------------------------------------


def _time_fresh_import(code: str, env: dict[str, str]) -> float:
    """Milliseconds to run `code` in a fresh interpreter, measured inside it (no interpreter start-up)."""
    script = f"import time\n_t = time.perf_counter()\n{code}\nprint((time.perf_counter() - _t) * 1000)\n"
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return float(completed.stdout.strip().splitlines()[-1])


def cold_init(repeats: int) -> dict[str, float]:
    env = {**os.environ, **FUNCTION_ENV}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env["AWS_LAMBDA_FUNCTION_NAME"] = "dogbreed-bench"  # the Tracer is on, as in Lambda
    env["PYTHONPATH"] = os.pathsep.join(
        [str(FUNCTIONS_DIR), str(LAMBDA_SHARED_DIR), env.get("PYTHONPATH", "")]
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    figures: dict[str, float] = {}
    for label, code in (
        ("bare Powertools import", BARE_POWERTOOLS),
        ("boto3 + its 3 clients (for scale)", BOTO3_CLIENTS),
        ("predict_api.app import to ready", "import predict_api.app"),
        ("predict_s3.app import to ready", "import predict_s3.app"),
    ):
        _time_fresh_import(code, env)  # warms the bytecode cache, as a deployed package has .pyc files
        figures[label] = statistics.median(_time_fresh_import(code, env) for _ in range(repeats))
    return figures


# --- report -------------------------------------------------------------------------------------------


def run_benchmark(iterations: int, warmup: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dogbreed-lambda-bench-") as tmp:
        out = Path(tmp) / "warm.json"
        env = {**os.environ, **FUNCTION_ENV, "POWERTOOLS_TRACE_DISABLED": "true"}
        code = (
            "from pathlib import Path\nfrom dogbreed.bench.lambda_bench import _warm_worker\n"
            f"_warm_worker({iterations}, {warmup}, Path({str(out)!r}))\n"
        )
        # The handlers' JSON logs and EMF metrics go to stdout, as in Lambda; here that is /dev/null.
        subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, timeout=1800, stdout=subprocess.DEVNULL
        )
        warm = json.loads(out.read_text())
    return {
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "warm": warm,
        "cold_ms": cold_init(repeats),
    }


def format_report(report: dict[str, Any]) -> str:
    warm = report["warm"]
    lines = [
        f"dogbreed bench lambda  (python {report['python']} {report['machine']}; handlers in-process; "
        f"S3/DynamoDB/endpoint on a loopback stand-in; image {warm['image_bytes'] // 1024} KiB JPEG; "
        f"{report['cpus']} CPUs, load average {report['load_average']:.1f} at the end)",
        "",
        "warm handler overhead, endpoint call excluded",
        f"  {'scenario':<34}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}  p50/target  p99/target",
    ]
    for name, figures in warm["scenarios"].items():
        lines.append(
            f"  {name:<34}{figures['n']:>6}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
            f"  {figures['p50_ms'] / TARGET_P50_MS:>10.2f}  {figures['p99_ms'] / TARGET_P99_MS:>10.2f}"
        )
    lines.append(
        f"  targets: p50 < {TARGET_P50_MS:.0f} ms, p99 < {TARGET_P99_MS:.0f} ms (ratio < 1 meets them)"
    )
    cold = report["cold_ms"]
    bare = cold["bare Powertools import"]
    lines += ["", "cold init, fresh interpreter, median (Tracer enabled)"]
    for label, value in cold.items():
        lines.append(f"  {label:<34}{value:>9.1f} ms   x{value / bare:.2f} of bare Powertools")
    lines.append(f"  target: handler import < {TARGET_COLD_MS:.0f} ms")
    return "\n".join(lines)


def register(bench_subparsers: Any) -> None:
    parser = bench_subparsers.add_parser(
        "lambda",
        help="inference Lambda handlers: warm overhead without the endpoint, and cold init",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--iterations", type=int, default=300, help="measured invocations per scenario")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured invocations per scenario first")
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per cold-init figure")
    parser.add_argument("--quick", action="store_true", help="60 invocations, 3 interpreters")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    iterations, repeats = (60, 3) if args.quick else (args.iterations, args.repeats)
    report = run_benchmark(iterations, min(args.warmup, iterations), repeats)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
