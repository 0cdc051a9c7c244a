"""The local cloud in tests: started on free ports, stopped with a check that nothing of it is left.

`cloud_world` (tests/support/fixtures.py) is the one cloud of a test session: template.yaml deployed
with the production URL policy, the tiny model serving as the stack's endpoint. Every test that uses
it leaves it as it found it (faults cleared, endpoint InService), and the tests that use it run in
one pytest-xdist worker (the `local-cloud` group, set in tests/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from dogbreed.local.cloud.lifecycle import start_cloud, stop_cloud
from dogbreed.local.cloud.state import CloudState
from dogbreed.loopback import free_port, pid_alive, port_listening
from tests.support.aws_cli import aws_cli
from tests.support.waiting import wait_for

# The pipeline's mechanics on a tiny budget: one tuning trial whose model the final training reuses,
# 32-pixel images, and no accuracy bar (the mechanics are under test, not the tiny model's accuracy).
TINY_PIPELINE = (
    "MaxTuningJobs=1",
    "MaxParallelTuningJobs=1",
    "TuningEpochsMin=1",
    "TuningEpochsMax=2",
    "ReuseTuningArtifact=true",
    "ImageSize=32",
    "AccuracyThreshold=0.0",
)

# Alarm periods and the services' 1-minute metrics, shortened (5 min -> 15 s) so an outage's alarms
# can be watched going to ALARM within a test.
METRIC_PERIOD_SCALE = 0.05


def cloud_ports(state: CloudState) -> list[int]:
    """Every port the cloud listens on: AWS (moto), the HTTP API, SageMaker runtime and control."""
    return [
        int(url.rsplit(":", 1)[1])
        for url in (state.aws_url, state.api_url, state.runtime_url, state.control_url)
    ]


@contextmanager
def local_cloud(
    state_dir: Path,
    overrides: list[str] | None = None,
    *,
    loopback_urls: bool = True,
    metric_period_scale: float = 1.0,
) -> Iterator[CloudState]:
    """A cloud on free ports; on exit it is stopped and checked gone (process tree and ports)."""
    state = start_cloud(
        state_dir,
        aws_port=free_port(),
        api_port=free_port(),
        overrides=overrides or [],
        loopback_urls=loopback_urls,
        metric_period_scale=metric_period_scale,
    )
    ports = cloud_ports(state)
    try:
        yield state
    finally:
        stop_cloud(state_dir)
        # The cloud's own children (endpoints, jobs) are covered by the session-end check, which also
        # sees orphans; here: the cloud itself and every port it served.
        wait_for(lambda: not pid_alive(state.pid), timeout=30, what=f"the cloud (pid {state.pid}) to exit")
        still_listening = [port for port in ports if port_listening(port)]
        assert not still_listening, f"the stopped cloud left ports listening: {still_listening}"


@dataclass
class CloudWorld:
    """The shared cloud as a test sees it: state, state directory and a boto3 session."""

    state: CloudState
    state_dir: Path
    session: boto3.session.Session

    @property
    def outputs(self) -> dict[str, str]:
        return self.state.outputs

    @property
    def api_url(self) -> str:
        return self.state.api_url

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.state.aws_url)


@contextmanager
def stack_parameters(world: CloudWorld, overrides: dict[str, str]) -> Iterator[None]:
    """The shared cloud's stack redeployed in place with `overrides` on top of the parameters it has
    (as `dogbreed local deploy --parameter-overrides` does), and put back as it was when the block
    ends, so the other tests of the session see the stack they expect."""
    from dogbreed.local.cloud.lifecycle import deploy_stack

    current = CloudState.read(world.state_dir)
    assert current is not None, "the shared local cloud is not up"
    before = dict(current.parameters)
    deploy_stack(world.state, {**before, **overrides})
    try:
        yield
    finally:
        deploy_stack(world.state, before)


def dogbreed_cli(
    *args: str, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`dogbreed <args>` as a user runs it: a process of its own (`env`: its whole environment), its
    output captured."""
    return subprocess.run(
        [sys.executable, "-m", "dogbreed", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def local_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`dogbreed local <args>` as a user runs it."""
    return dogbreed_cli("local", *args, timeout=timeout)


def aws_sagemaker(env: dict[str, str], *args: str) -> dict[str, Any]:
    """`aws sagemaker <args>` (the AWS CLI) with `env`; its JSON answer, or the failure raised."""
    done = subprocess.run(
        [aws_cli(), "sagemaker", *args], env=env, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result
