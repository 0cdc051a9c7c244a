"""The endpoint needs no network: `dogbreed serve` runs the model directory's own code/inference.py (what
SageMaker runs) in processes whose every non-loopback connection and name lookup fails, as under
network isolation, and without onnxruntime, as in the SageMaker PyTorch inference image. It starts,
answers /ping, classifies an image on the PyTorch fallback, says so in its log, and tries to reach
nothing. The guard is `tests/integration/offline_guard/sitecustomize.py` on the children's PYTHONPATH.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_image
from dogbreed.loopback import free_port

pytestmark = pytest.mark.slow

GUARD_DIR = Path(__file__).parent / "offline_guard"
LOG_ENV = "DOGBREED_OFFLINE_LOG"
HIDDEN_ENV = "DOGBREED_OFFLINE_HIDDEN_MODULES"
FALLBACK_LINE = "onnxruntime is not installed in this container: serving model.pth with PyTorch"


def offline_env(refusals: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(GUARD_DIR), os.environ.get("PYTHONPATH", "")]),
        LOG_ENV: str(refusals),
        HIDDEN_ENV: "onnxruntime",
        "DOGBREED_INFERENCE_THREADS": "1",
    }


def jpeg(class_index: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid_color_image(class_index, 96, seed=5)).save(buffer, "JPEG")
    return buffer.getvalue()


_GUARD_PROBE = """
import socket
listener = socket.create_server(("127.0.0.1", 0))
socket.create_connection(listener.getsockname(), timeout=5).close()
print("loopback ok")
for attempt in (
    lambda: socket.create_connection(("192.0.2.10", 443), timeout=5),
    lambda: socket.getaddrinfo("example.com", 443),
):
    try:
        attempt()
    except OSError as error:
        print("refused", type(error).__name__)
try:
    import onnxruntime
except ImportError:
    print("onnxruntime hidden")
"""


def test_the_guard_refuses_every_way_out_but_loopback(tmp_path: Path) -> None:
    # Given a child interpreter with the guard on its path
    refusals = tmp_path / "refusals.log"

    # When it reaches for loopback, a public address, a DNS name and onnxruntime
    result = subprocess.run(
        [sys.executable, "-c", _GUARD_PROBE],
        env=offline_env(refusals),
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then only loopback works, and each refusal is recorded
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == [
        "loopback ok",
        "refused OSError",
        "refused gaierror",
        "onnxruntime hidden",
    ]
    recorded = refusals.read_text().splitlines()
    assert len(recorded) == 2
    assert "192.0.2.10" in recorded[0] and "example.com" in recorded[1]


@dataclass
class OfflineServer:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    refusals: Path


@pytest.fixture(scope="module")
def offline_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineServer]:
    scratch = tmp_path_factory.mktemp("offline-serve")
    refusals, log = scratch / "refusals.log", scratch / "server.log"
    refusals.touch()
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dogbreed",
                "serve",
                "--model-dir",
                str(tiny_model_dir),
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=offline_env(refusals),
        )
    server = OfflineServer(process, f"http://127.0.0.1:{port}", log, refusals)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the server never answered /ping:\n{log.read_text()}"
            try:
                if httpx.get(f"{server.url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_model_directory_ships_nothing_to_install(tiny_model_dir: Path) -> None:
    # The SageMaker serving container pip-installs code/requirements.txt at start when there is one.
    assert (tiny_model_dir / "code" / "inference.py").is_file()
    assert not (tiny_model_dir / "code" / "requirements.txt").exists()


def test_offline_server_answers_ping(offline_server: OfflineServer) -> None:
    response = httpx.get(f"{offline_server.url}/ping", timeout=10)

    assert response.status_code == 200


def test_offline_server_classifies_an_image_on_the_pytorch_fallback(offline_server: OfflineServer) -> None:
    # When an image is sent as bytes
    response = httpx.post(
        f"{offline_server.url}/invocations",
        content=jpeg(2),
        headers={"Content-Type": "image/jpeg", "Accept": "application/json"},
        timeout=60,
    )

    # Then it is classified, and the log says the PyTorch weights serve (no onnxruntime here)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["breed"] == TINY_CLASSES[2]
    assert FALLBACK_LINE in offline_server.log.read_text()


def test_offline_server_tried_to_reach_nothing(offline_server: OfflineServer) -> None:
    # Given a served request (every worker has loaded the model by the time /ping answered)
    httpx.post(
        f"{offline_server.url}/invocations",
        content=jpeg(0),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )

    # Then no process of the server attempted an outbound connection or a name lookup
    assert offline_server.refusals.read_text() == ""
