"""`dogbreed serve` as a real subprocess on a free port, serving a trained tiny model directory."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_jpeg
from dogbreed.loopback import free_port, pid_alive, port_listening
from tests.support.processes import command_line, descendants
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def jpeg(class_index: int, size: int = 120) -> bytes:
    return solid_color_jpeg(class_index, size, seed=11)


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.client = httpx.Client(base_url=url, timeout=30)

    def invoke(self, body: bytes, content_type: str, **headers: str) -> httpx.Response:
        return self.client.post(
            "/invocations", content=body, headers={"Content-Type": content_type, **headers}
        )

    def workers(self) -> list[int]:
        """The worker processes of a multi-worker server (uvicorn spawns them with multiprocessing)."""
        return [pid for pid in descendants(self.process.pid) if "multiprocessing.spawn" in command_line(pid)]

    def wait_for_workers(self, count: int) -> list[int]:
        def started() -> list[int] | None:
            found = self.workers()
            return found if len(found) == count else None

        return wait_for(started, timeout=30, what=f"{count} workers")

    def stop(self) -> int:
        """SIGTERM (the graceful drain) and wait; the exit status."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def start_server(model_dir: Path, *extra: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dogbreed",
            "serve",
            "--model-dir",
            str(model_dir),
            "--port",
            str(port),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "DOGBREED_INFERENCE_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited early with status {process.returncode}")
        try:
            return httpx.get(f"{url}/ping", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=120, what="the server to answer /ping")
    except AssertionError:
        process.kill()
        process.wait()
        raise
    return Server(process, url)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    running = start_server(
        tiny_model_dir, "--workers", "2", "--max-batch-size", "4", "--max-batch-delay-ms", "20"
    )
    yield running
    assert running.stop() == 0


def test_ping(server: Server) -> None:
    response = server.client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_one_prediction(server: Server) -> None:
    response = server.invoke(jpeg(2), "image/jpeg", Accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["model_version"] == "tiny-test-1"
    assert document["predictions"][0]["breed"] == TINY_CLASSES[2]
    assert sum(p["probability"] for p in document["predictions"]) == pytest.approx(1.0, abs=1e-4)


def test_a_json_body_is_415_the_endpoint_takes_image_bytes_only(server: Server) -> None:
    body = json.dumps({"image": base64.b64encode(jpeg(0)).decode()}).encode()
    response = server.invoke(body, "application/json")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_content_type"


def test_top_k_from_custom_attributes_header(server: Server) -> None:
    response = server.invoke(jpeg(0), "image/jpeg", **{"X-Amzn-SageMaker-Custom-Attributes": "top_k=1"})
    assert len(response.json()["predictions"]) == 1


def test_concurrent_requests_are_answered_correctly(server: Server) -> None:
    # Concurrent requests share dynamic batches; each must get its own answer back.
    classes = [i % 3 for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda c: server.invoke(jpeg(c), "image/jpeg"), classes))
    assert [r.json()["predictions"][0]["class_index"] for r in responses] == classes


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "code"),
    [
        (b"garbage", "image/jpeg", {}, 415, "not_an_image"),
        (b"", "image/png", {}, 400, "empty_body"),
        (b"{}", "text/plain", {}, 415, "unsupported_content_type"),
        (b"{oops", "application/json", {}, 415, "unsupported_content_type"),
        (
            b'{"url": "https://169.254.169.254/latest/meta-data/"}',
            "application/json",
            {},
            415,
            "unsupported_content_type",
        ),
        (None, "image/jpeg", {"Accept": "text/csv"}, 406, "not_acceptable"),
        (None, "image/jpeg", {"X-Amzn-SageMaker-Custom-Attributes": "top_k=99"}, 422, "invalid_top_k"),
        (b"x" * (6 * 1024 * 1024 + 10), "image/jpeg", {}, 413, "body_too_large"),
    ],
)
def test_bad_input_is_a_json_client_error_and_the_next_request_succeeds(
    server: Server, body: bytes | None, content_type: str, headers: dict[str, str], status: int, code: str
) -> None:
    response = server.invoke(jpeg(0) if body is None else body, content_type, **headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    # Both workers survive: several follow-up requests (spread over workers) all succeed.
    for class_index in (1, 2, 0, 1):
        follow_up = server.invoke(jpeg(class_index), "image/jpeg")
        assert follow_up.status_code == 200
        assert follow_up.json()["predictions"][0]["class_index"] == class_index


def test_unknown_route_and_method(server: Server) -> None:
    assert server.client.get("/invocations").status_code == 405
    assert server.client.get("/nope").status_code == 404


def test_sigterm_drains_and_exits_cleanly(tiny_model_dir: Path) -> None:
    running = start_server(tiny_model_dir, "--max-batch-delay-ms", "200")
    with ThreadPoolExecutor(max_workers=2) as pool:
        in_flight = [pool.submit(running.invoke, jpeg(c), "image/jpeg") for c in (0, 1)]
        time.sleep(0.1)  # both requests are waiting in the 200 ms batch window
        running.process.send_signal(signal.SIGTERM)
        responses = [future.result() for future in in_flight]
        # The one SIGTERM is enough: wait for the exit without signalling again (a second signal
        # after the drain would race the process's exit).
        try:
            status = running.process.wait(timeout=60)
        finally:
            running.stop()
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json()["predictions"][0]["class_index"] for r in responses] == [0, 1]
    assert status == 0


def test_sigterm_to_a_multi_worker_server_stops_every_worker(tiny_model_dir: Path) -> None:
    # Given a server with two worker processes
    running = start_server(tiny_model_dir, "--workers", "2")
    workers = running.wait_for_workers(2)
    # When it is asked to stop
    status = running.stop()
    # Then it exits cleanly and takes its workers and its port with it
    assert status == 0
    assert [pid for pid in workers if pid_alive(pid)] == []
    assert not port_listening(running.port)


def test_workers_stop_when_their_supervisor_is_killed(tiny_model_dir: Path) -> None:
    # Given a server with two worker processes
    running = start_server(tiny_model_dir, "--workers", "2")
    workers = running.wait_for_workers(2)
    # When its supervisor dies without a chance to stop them (SIGKILL, the OOM killer)
    running.process.kill()
    running.process.wait()
    running.client.close()
    # Then the orphaned workers stop on their own and the port is released
    wait_for(
        lambda: not [pid for pid in workers if pid_alive(pid)],
        timeout=30,
        what=f"the orphaned workers {workers} to exit",
    )
    assert not port_listening(running.port)


def test_missing_model_dir_is_a_clear_cli_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dogbreed", "serve", "--model-dir", str(tmp_path / "absent"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_predict_command_against_the_server(server: Server, tmp_path: Path) -> None:
    image = tmp_path / "dog.jpg"
    image.write_bytes(jpeg(1))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dogbreed",
            "predict",
            str(image),
            "--server",
            server.url,
            "--top-k",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [p["class_index"] for p in document["predictions"]][:1] == [1]
    assert len(document["predictions"]) == 2


def test_predict_command_reports_client_errors(server: Server, tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    result = subprocess.run(
        [sys.executable, "-m", "dogbreed", "predict", str(not_an_image), "--server", server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "415" in result.stderr and "not_an_image" in result.stderr


def test_the_model_dirs_own_code_is_what_runs(tiny_model_dir: Path) -> None:
    # A fresh interpreter, as in a worker: code/ goes first on sys.path, so the packages shipped in the
    # model directory (what SageMaker runs) are imported, not the checkout's.
    probe = (
        "import sys; from pathlib import Path; from dogbreed.serving.handler import Handler; "
        f"h = Handler.load(Path({str(tiny_model_dir)!r})); "
        "print(h.script); print(sys.modules['dogbreed_job'].__file__); "
        "print(sys.modules['request_guards'].__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert result.returncode == 0, result.stderr
    code_dir = str(tiny_model_dir / "code")
    assert all(line.startswith(code_dir) for line in result.stdout.split())
