"""`dogbreed local up` / `down`: down stops everything up started and leaves no process or port."""

from __future__ import annotations

from pathlib import Path

import pytest

from dogbreed.local.cloud.state import CloudState
from dogbreed.loopback import free_port, pid_alive, port_listening
from tests.support.local_cloud import cloud_ports
from tests.support.local_cloud import local_cli as _cli

pytestmark = pytest.mark.slow


def test_down_stops_the_cloud_its_lambda_workers_and_every_port(tmp_path: Path) -> None:
    # Given a running cloud in which a function has run (so it has a warm worker process)
    from botocore.config import Config

    from dogbreed.local.cloud.lifecycle import cloud_status
    from dogbreed.local.cloud.state import local_session

    aws_port, api_port = free_port(), free_port()
    up = _cli("up", "--state-dir", str(tmp_path), "--port", str(aws_port), "--api-port", str(api_port))
    assert up.returncode == 0, up.stderr
    assert "starting the local cloud" in up.stderr  # the wait is on stderr; stdout has the result only
    assert up.stdout.startswith("local cloud up (pid ")
    state = CloudState.read(tmp_path)
    assert state is not None
    ports = cloud_ports(state)
    assert ports[:2] == [aws_port, api_port]
    workers: list[int] = []
    try:
        assert all(port_listening(port) for port in ports)
        function = cloud_status(state)["functions"][0]
        client = local_session().client(
            "lambda",
            endpoint_url=state.aws_url,
            config=Config(read_timeout=120, retries={"total_max_attempts": 1}),
        )
        client.invoke(FunctionName=function, Payload=b"{}")
        workers = cloud_status(state)["lambda"]["functions"][function]["pids"]
        assert workers and all(pid_alive(pid) for pid in workers)
    finally:
        # When the cloud goes down
        down = _cli("down", "--state-dir", str(tmp_path))

    # Then the cloud, its workers and every port it served are gone, and its state with them
    assert down.returncode == 0
    assert not pid_alive(state.pid)
    assert [pid for pid in workers if pid_alive(pid)] == []
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
