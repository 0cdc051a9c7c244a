"""The servers the endpoint benchmark compares: the model server and the course starter's handler, each
started on a free loopback port and stopped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dogbreed.bench.endpoint_config import BenchConfig
from dogbreed.loopback import free_port


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url}/ping did not answer 200 within {timeout_s:.0f}s")


@contextmanager
def running(command: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a server command on a free loopback port (`{port}` in the command), yield its URL."""
    port = free_port()
    process = subprocess.Popen(
        [part.format(port=port) for part in command],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_command(model_dir: Path, config: BenchConfig, onnx_file: str | None = None) -> list[str]:
    extra = ["--onnx-file", onnx_file] if onnx_file else []
    return [
        sys.executable,
        "-m",
        "dogbreed",
        "serve",
        "--model-dir",
        str(model_dir),
        "--port",
        "{port}",
        "--workers",
        str(config.server_workers),
        "--max-batch-size",
        str(config.max_batch_size),
        "--max-batch-delay-ms",
        str(config.max_batch_delay_ms),
        "--log-level",
        "warning",
        *extra,
    ]


def baseline_command(model_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dogbreed.bench.starter_baseline",
        "--model-dir",
        str(model_dir),
        "--port",
        "{port}",
    ]
