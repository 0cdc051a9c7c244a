"""The local cloud's lifecycle and control API for its clients (the CLI, the demo, the benchmarks,
the tests): start it as a process of its own, find it running, ask its status, deploy the stack,
stop it and every process it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.sagemaker.processes import group_members
from dogbreed.loopback import pid_alive, port_listening

UP_TIMEOUT_SECONDS = 180.0
DOWN_GRACE_SECONDS = 30.0
# Clouds this process started, by pid, until stop_cloud reaps them: a Popen dropped while its child
# runs is a leak to Python (ResourceWarning), and the demo and the tests start and stop clouds in-process.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def running_state(state_dir: Path) -> cloud_state.CloudState | None:
    """The running cloud's state, or None when it is not up (stale files are ignored)."""
    state = cloud_state.CloudState.read(state_dir)
    if state is None or not pid_alive(state.pid):
        return None
    try:
        httpx.get(f"{state.control_url}/health", timeout=5).raise_for_status()
    except httpx.HTTPError:
        return None
    return state


def start_cloud(
    state_dir: Path,
    *,
    aws_port: int,
    api_port: int,
    overrides: list[str],
    loopback_urls: bool = True,
    metric_period_scale: float = 1.0,
) -> cloud_state.CloudState:
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    for port in (aws_port, api_port):
        if port and port_listening(port, cloud_state.HOST):
            raise RuntimeError(
                f"port {port} is already in use on {cloud_state.HOST}; pick another with a flag"
            )
    with contextlib.suppress(FileNotFoundError):
        (state_dir / cloud_state.STATE_FILE).unlink()
    command = [
        sys.executable, "-m", "dogbreed.local.cloud.server",
        "--state-dir", str(state_dir),
        "--aws-port", str(aws_port),
        "--api-port", str(api_port),
        "--parameter-overrides", " ".join(overrides),
        *([] if loopback_urls else ["--no-loopback-urls"]),
        "--metric-period-scale", str(metric_period_scale),
    ]  # fmt: skip
    # The child writes to its own copy of the log's descriptor; this process's copy closes here.
    with (state_dir / cloud_state.LOG_FILE).open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _STARTED[process.pid] = process
    (state_dir / cloud_state.PID_FILE).write_text(str(process.pid), encoding="utf-8")
    deadline = time.monotonic() + UP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _STARTED.pop(process.pid, None)
            tail = (state_dir / cloud_state.LOG_FILE).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the local cloud exited with code {process.returncode}:\n{tail}")
        state = running_state(state_dir)
        if state is not None and state.outputs:
            return state
        time.sleep(0.5)
    stop_cloud(state_dir)
    raise RuntimeError(f"the local cloud did not answer within {UP_TIMEOUT_SECONDS:.0f} s")


def _pgid_alive(pgid: int) -> bool:
    # When this process started the cloud (the demo, tests), reap it so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group whose members have all exited but wait as zombies for a parent that does not reap them
    # (a container's init, a subreaper) is gone: waiting for it would spend the whole grace period.
    return not Path("/proc").is_dir() or bool(group_members(pgid))


def stop_cloud(state_dir: Path) -> bool:
    """Stop the cloud process (its process group) and the job/endpoint process groups it started.
    Returns whether anything was running."""
    from dogbreed.local.cloud.local_cloud import CHILDREN_FILE

    pid_file = state_dir / cloud_state.PID_FILE
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text().strip() or 0)
    children_file = state_dir / CHILDREN_FILE
    children = [int(line) for line in children_file.read_text().split()] if children_file.is_file() else []
    was_running = pid > 0 and pid_alive(pid)
    if was_running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # start_new_session: the cloud leads its own group
        deadline = time.monotonic() + DOWN_GRACE_SECONDS
        while time.monotonic() < deadline and _pgid_alive(pid):
            time.sleep(0.2)
        if _pgid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    # Job and endpoint processes lead their own groups; the cloud stops them on SIGTERM, and these
    # recorded ids catch any it could not.
    for child in children:
        if _pgid_alive(child):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
    started = _STARTED.pop(pid, None)
    if started is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            started.wait(timeout=DOWN_GRACE_SECONDS)
    for name in (cloud_state.PID_FILE, cloud_state.STATE_FILE, CHILDREN_FILE):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()
    return was_running


def cloud_status(state: cloud_state.CloudState) -> dict[str, Any]:
    response = httpx.get(f"{state.control_url}/status", timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def deploy_stack(state: cloud_state.CloudState, overrides: dict[str, str]) -> dict[str, Any]:
    response = httpx.post(f"{state.control_url}/deploy", json={"parameters": overrides}, timeout=120)
    result: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise RuntimeError(str(result.get("error")))
    return result


def parse_overrides(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"parameter override {item!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides
