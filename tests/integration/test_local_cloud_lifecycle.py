"""`dogbreed local up` / `down`: down stops everything up started and leaves no process or port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dogbreed.local.cloud.state import CloudState
from dogbreed.loopback import free_port, pid_alive, port_listening

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dogbreed", "local", *args], capture_output=True, text=True, timeout=240
    )


def test_down_leaves_no_process_and_no_listening_port(tmp_path: Path) -> None:
    aws_port, api_port = free_port(), free_port()
    up = _cli("up", "--state-dir", str(tmp_path), "--port", str(aws_port), "--api-port", str(api_port))
    assert up.returncode == 0, up.stderr
    state = CloudState.read(tmp_path)
    assert state is not None
    runtime_port = int(state.runtime_url.rsplit(":", 1)[-1])
    control_port = int(state.control_url.rsplit(":", 1)[-1])
    ports = [aws_port, api_port, runtime_port, control_port]
    assert all(port_listening(port) for port in ports)

    down = _cli("down", "--state-dir", str(tmp_path))

    assert down.returncode == 0
    assert not pid_alive(state.pid)
    assert not any(port_listening(port) for port in ports)
    assert CloudState.read(tmp_path) is None
    assert "not running" in _cli("down", "--state-dir", str(tmp_path)).stdout


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = _cli("up", "--state-dir", str(tmp_path), "--port", str(port), "--api-port", str(free_port()))
    assert up.returncode == 1
    assert "already in use" in up.stderr
