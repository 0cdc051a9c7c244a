"""Run the model server: uvicorn with N worker processes, each loading the model once and batching.

SIGTERM (or Ctrl-C) drains: workers stop accepting, finish in-flight requests and queued batches,
then exit; the process exits 0. With several workers, a supervisor that dies without draining (SIGKILL)
takes its workers with it: each one stops when its parent is gone (supervisor_watch.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from dogbreed.serving.settings import (
    DEFAULT_MAX_BATCH_DELAY_MS,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_PORT,
    DEFAULT_PREPROCESS_THREADS,
    GRACEFUL_SHUTDOWN_S,
    SETTINGS_ENV,
    ServeSettings,
)
from dogbreed.serving.supervisor_watch import SUPERVISOR_PID_ENV

THREADS_ENV = "DOGBREED_INFERENCE_THREADS"  # read by the handler (dogbreed_job.serving_model) in each worker
ONNX_FILE_ENV = "DOGBREED_ONNX_FILE"  # read by the handler (dogbreed_job.serving_model) in each worker
APP_FACTORY = "dogbreed.serving.app:create_app"
REQUIRED_FILES = ("model_config.json", "classes.json")


class _Stopped(Exception):
    """Raised by our signal handler once uvicorn has drained and hands the signal back."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stopped(signum)


class ModelDirError(ValueError):
    """The model directory is missing files the server needs."""


def check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory {model_dir} does not exist")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelDirError(f"model directory {model_dir} lacks {', '.join(missing)}")
    if not (model_dir / "model.onnx").is_file() and not (model_dir / "model.pth").is_file():
        raise ModelDirError(f"model directory {model_dir} has neither model.onnx nor model.pth")


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workers: int = 1,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_batch_delay_ms: float = DEFAULT_MAX_BATCH_DELAY_MS,
    preprocess_threads: int = DEFAULT_PREPROCESS_THREADS,
    log_level: str = "info",
    onnx_file: str | None = None,
) -> None:
    """Serve `model_dir` until SIGTERM/SIGINT. Blocks."""
    directory = Path(model_dir).resolve()
    check_model_dir(directory)
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if onnx_file is not None:
        if Path(onnx_file).name != onnx_file or not (directory / onnx_file).is_file():
            raise ModelDirError(f"{onnx_file} is not a file in {directory}")
        os.environ[ONNX_FILE_ENV] = onnx_file
    settings = ServeSettings(
        model_dir=str(directory),
        max_batch_size=max_batch_size,
        max_batch_delay_ms=max_batch_delay_ms,
        preprocess_threads=preprocess_threads,
    )
    os.environ[SETTINGS_ENV] = settings.to_env()
    # Worker processes (workers > 1) watch this process and stop when it is gone.
    if workers > 1:
        os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    else:
        os.environ.pop(SUPERVISOR_PID_ENV, None)
    # Split the cores between workers unless the operator chose a thread count.
    os.environ.setdefault(THREADS_ENV, str(threads_per_worker(workers)))
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal against the previous handler; ours
    # turns that into a normal return, so a drained server exits 0 instead of dying by the signal.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)} if in_main_thread else {}
    )
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            timeout_keep_alive=30,
        )
    except _Stopped as stopped:
        logging.getLogger("dogbreed.serving").info("model server stopped (signal %s)", stopped.args[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
