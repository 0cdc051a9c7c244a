"""Fixtures shared by every test area (loaded by tests/conftest.py as a plugin)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import processes
from tests.support.credentials import FAKE_CREDENTIALS, FOREIGN_AWS_VARIABLES, REGION
from tests.support.network import network_forbidden

if TYPE_CHECKING:
    import boto3

    from tests.support.local_cloud import CloudWorld

LEFTOVER_GRACE_SECONDS = 10.0


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Fails the session when a process a test started (or its orphan) or a port this process opened
    is still there at the end; the leftovers are then killed so they do not outlive the run."""
    processes.become_subreaper()
    me = os.getpid()
    ports_before = processes.listening_ports(me)
    helpers_before = {leftover.pid for leftover in processes.live_descendants(me)}
    yield

    def started_here() -> list[processes.Leftover]:
        return [p for p in processes.live_descendants(me) if p.pid not in helpers_before]

    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while started_here() and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = started_here()
    ports = sorted(processes.listening_ports(me) - ports_before)
    processes.kill_and_reap([leftover.pid for leftover in leftovers])
    problems = [f"process left running: {leftover}" for leftover in leftovers]
    problems += [f"port left listening in the test process: {port}" for port in ports]
    if problems:
        pytest.fail("the tests left these behind (now killed):\n" + "\n".join(problems), pytrace=False)


def run_shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shared by the pytest-xdist workers of this run (their base temp's parent, which is
    this run's own), or this session's base temp without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny model directory (resnet18, 3 classes, 32 px) written by `export_model_dir`: weights,
    config, classes, verified ONNX export and code/. It learns "dominant colour channel -> class".
    Trained once per run: the first worker to get here trains it, the others wait and reuse it."""
    import torch

    from dogbreed.bench.tiny_model import train_tiny_model

    shared = run_shared_dir(tmp_path_factory)
    model_dir = shared / "tiny_model" / "model"
    done = shared / "tiny_model" / "trained"
    with (shared / "tiny_model.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            # One thread: the other xdist worker has the other core, and torch's spinning intra-op
            # threads on a busy core cost several times their work.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                train_tiny_model(model_dir)
            finally:
                torch.set_num_threads(threads)
            done.touch()
    return model_dir


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region for boto3 (moto accepts any); no profile or endpoint override."""
    for name in FOREIGN_AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def moto_session(aws_credentials: None) -> Iterator[boto3.session.Session]:
    """A boto3 session on moto's in-process AWS, with the local cloud's moto hooks removed after."""
    import boto3
    from moto import mock_aws

    from dogbreed.local import moto_shim

    with mock_aws():
        yield boto3.session.Session(region_name=REGION)
    moto_shim.uninstall()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any DNS lookup or connection attempt fails the test; yields the attempts (to assert none)."""
    with network_forbidden(monkeypatch) as attempts:
        yield attempts


@pytest.fixture(scope="session")
def cloud_world(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudWorld]:
    """The session's one local cloud: template.yaml deployed, the tiny model serving as the stack's
    endpoint, and the production URL policy (the hostile corpus's loopback URLs must be refused)."""
    from dogbreed.local.cloud.model_deploy import deploy_model_dir
    from dogbreed.local.cloud.state import local_session
    from tests.support.local_cloud import METRIC_PERIOD_SCALE, CloudWorld, local_cloud

    state_dir = tmp_path_factory.mktemp("local-cloud")
    with local_cloud(state_dir, loopback_urls=False, metric_period_scale=METRIC_PERIOD_SCALE) as state:
        deploy_model_dir(state, tiny_model_dir, name="dogbreed-tiny")
        yield CloudWorld(state=state, state_dir=state_dir, session=local_session())
