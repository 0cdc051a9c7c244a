"""Cold init: importing each handler module up to ready in a fresh interpreter, beside the bare
Powertools import and boto3's clients."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from dogbreed import FUNCTIONS_DIR, LAMBDA_SHARED_DIR
from dogbreed.bench.lambda_fake_aws import FUNCTION_ENV

BARE_POWERTOOLS = (
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "Logger(); Metrics(); Tracer(); APIGatewayRestResolver(enable_validation=True)\n"
)
# What the handlers build at init besides Powertools: most of it is parsing the S3 service model.
BOTO3_CLIENTS = "import boto3\nfor name in ('s3', 'dynamodb', 'sagemaker-runtime'): boto3.client(name)\n"


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
