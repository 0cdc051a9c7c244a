"""The local SageMaker's deployment guardrails without a cloud: the traffic steps of each
TrafficRoutingConfiguration, the PendingDeploymentSummary against botocore's shape, the traffic draw,
and the broken candidates' model servers (real processes on loopback)."""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
from botocore.validate import ParamValidator

from dogbreed.local.cloud.faults import ENDPOINT_UPDATE_MODES, build_fault
from dogbreed.local.sagemaker.faulty_model import MODES, faulty_serve_command
from dogbreed.local.sagemaker.processes import group_members
from dogbreed.local.sagemaker.rollout import Rollout, Step, traffic_plan
from dogbreed.loopback import free_port
from tests.support.waiting import wait_for

MODEL = botocore.session.get_session().get_service_model("sagemaker")


def _config(routing: dict[str, Any], **policy: Any) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, **policy},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}, {"AlarmName": "latency"}]},
    }


def test_a_canary_bakes_its_share_then_bakes_again_with_all_traffic() -> None:
    plan = traffic_plan(
        _config(
            {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 30,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            TerminationWaitInSeconds=5,
        ),
        capacity=4,
    )
    # the canary's bake, then the final baking period with all traffic on the new fleet
    assert plan.steps == (Step(0.1), Step(1.0))
    assert (plan.bake_seconds, plan.termination_wait_seconds) == (30, 5)
    assert plan.alarms == ("errors", "latency")


def test_a_canary_sized_in_instances_takes_their_share_of_the_fleet() -> None:
    routing = {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 1,
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
    }
    assert traffic_plan(_config(routing), capacity=4).steps[0] == Step(0.25)


@pytest.mark.parametrize(
    ("percent", "shares"), [(50, (0.5, 1.0)), (30, (0.3, 0.6, 0.9, 1.0)), (25, (0.25, 0.5, 0.75, 1.0))]
)
def test_linear_steps_each_bake_until_all_traffic(percent: int, shares: tuple[float, ...]) -> None:
    routing = {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 10,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": percent},
    }
    steps = traffic_plan(_config(routing), capacity=2).steps
    assert [step.share for step in steps] == pytest.approx(list(shares))


def test_all_at_once_bakes_after_the_shift_and_no_config_does_not_bake() -> None:
    plan = traffic_plan(_config({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}), capacity=1)
    assert plan.steps == (Step(1.0),) and plan.bake_seconds == 60
    default = traffic_plan(None, capacity=1)
    assert default.steps == (Step(1.0),) and default.bake_seconds == 0 and default.alarms == ()


def test_the_pending_deployment_has_botocores_shape() -> None:
    routing = {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 5,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
    }
    spec = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialInstanceCount": 2,
        "InstanceType": "ml.m5.large",
    }
    rollout = Rollout(config_name="dogbreed-2", specs=[spec], plan=traffic_plan(_config(routing), 2))
    rollout.enter("Baking", "50% of traffic on the new fleet; baking 5 s", 0.5)

    summary = rollout.summary()

    shape = MODEL.operation_model("DescribeEndpoint").output_shape.members["PendingDeploymentSummary"]
    report = ParamValidator().validate(summary, shape)
    assert not report.has_errors(), report.generate_report()
    [variant] = summary["ProductionVariants"]
    assert variant["VariantStatus"][0]["Status"] == "Baking"
    assert rollout.status()["NewFleetTrafficShare"] == 0.5
    assert rollout.timeline[-1]["new_fleet_share"] == 0.5


def test_the_new_fleet_gets_its_share_of_requests() -> None:
    rollout = Rollout(config_name="c", specs=[], plan=traffic_plan(None, 1))
    rollout.variants = {"AllTraffic": object()}  # type: ignore[dict-item]  # only its presence counts
    random.seed(7)
    for share, expected in ((0.0, 0), (1.0, 1000)):
        rollout.share = share
        assert sum(rollout.routes_to_new() for _ in range(1000)) == expected
    rollout.share = 0.25
    assert 200 < sum(rollout.routes_to_new() for _ in range(1000)) < 300


def test_an_endpoint_update_fault_names_a_known_broken_model() -> None:
    assert ENDPOINT_UPDATE_MODES == MODES
    assert build_fault({"kind": "endpoint_update"}).error == "exit"
    assert build_fault({"kind": "endpoint_update", "error": "slow", "delay_seconds": 2}).delay_seconds == 2
    with pytest.raises(ValueError, match="one of exit, server-error, slow"):
        build_fault({"kind": "endpoint_update", "error": "ModelError"})


@pytest.fixture
def server() -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(command: list[str]) -> None:
        procs.append(subprocess.Popen(command, start_new_session=True))

    yield start
    for proc in procs:  # each in its own process group, as the fleet starts them
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        wait_for(functools.partial(_group_gone, proc.pid), timeout=10, what="the model servers to exit")


def _group_gone(pgid: int) -> bool:
    return not group_members(pgid)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_server_error_candidate_passes_ping_and_fails_every_invocation(server: Any) -> None:
    port = free_port()
    server(
        faulty_serve_command("server-error", "boom (injected fault f-1)", 0, lambda _d, _p: [])(
            Path("."), port
        )
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ready(url), timeout=20, what="the broken model server")

    response = httpx.post(f"{url}/invocations", content=b"jpeg", headers={"Content-Type": "image/jpeg"})

    assert response.status_code == 500 and "boom (injected fault f-1)" in response.text


def test_a_slow_candidate_answers_what_its_model_server_answers_late(server: Any) -> None:
    # Given a slow candidate in front of a model server (here: the broken one, whose answer is known)
    def upstream(model_dir: Path, port: int) -> list[str]:
        return faulty_serve_command("server-error", "from upstream", 0, lambda _d, _p: [])(model_dir, port)

    port = free_port()
    server(faulty_serve_command("slow", "slow", 0.6, upstream)(Path("."), port))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ready(url), timeout=30, what="the slow model server")

    started = time.monotonic()
    response = httpx.post(f"{url}/invocations", content=b"jpeg", headers={"Content-Type": "image/jpeg"})

    assert time.monotonic() - started >= 0.6
    assert response.status_code == 500 and "from upstream" in response.text
