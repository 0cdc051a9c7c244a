"""`dogbreed serve`: the local model server (SageMaker container contract, dynamic batching)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dogbreed.serving.settings import (
    DEFAULT_MAX_BATCH_DELAY_MS,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_PORT,
    DEFAULT_PREPROCESS_THREADS,
)


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve a model directory over HTTP (GET /ping, POST /invocations)",
        description="Serve a model directory with the SageMaker container contract. Runs the model's own "
        "code/inference.py (else training_job/inference.py), ONNX Runtime when model.onnx exists. "
        "/ping answers 200 once every worker has loaded the model; SIGTERM drains in-flight requests.",
    )
    serve.add_argument(
        "--model-dir", type=Path, required=True, help="model directory (unpacked model.tar.gz)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--max-batch-size",
        type=int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help=f"most images run as one batch (default {DEFAULT_MAX_BATCH_SIZE})",
    )
    serve.add_argument(
        "--max-batch-delay-ms",
        type=float,
        default=DEFAULT_MAX_BATCH_DELAY_MS,
        help=f"how long a batch waits for more requests (default {DEFAULT_MAX_BATCH_DELAY_MS})",
    )
    serve.add_argument(
        "--preprocess-threads",
        type=int,
        default=DEFAULT_PREPROCESS_THREADS,
        help=f"decode threads per worker, run between forward passes (default {DEFAULT_PREPROCESS_THREADS})",
    )
    serve.add_argument(
        "--onnx-file",
        default=None,
        help="ONNX file in the model directory to serve, e.g. model.int8.onnx (default model.onnx)",
    )
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from dogbreed.serving.server import ModelDirError, run

    try:
        run(
            args.model_dir,
            host=args.host,
            port=args.port,
            workers=args.workers,
            max_batch_size=args.max_batch_size,
            max_batch_delay_ms=args.max_batch_delay_ms,
            preprocess_threads=args.preprocess_threads,
            log_level=args.log_level,
            onnx_file=args.onnx_file,
        )
    except (ModelDirError, ValueError) as exc:
        print(f"dogbreed serve: error: {exc}", file=sys.stderr)
        return 2
    return 0
