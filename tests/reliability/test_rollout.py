"""Endpoint updates with deployment guardrails on the shared local cloud: a canary that bakes and
completes, and broken candidates (the `endpoint_update` fault: a model that answers 500, one that
answers late; and a model that serves fine but answers nonsense, every answer low-confidence) that
the stack's rollback alarms send back to the old fleet. API requests keep arriving
throughout; the test reconciles what S3 and DynamoDB hold with its own reads (every 201 stored exactly
once, every failure left nothing) and checks that the old model answered before, during and after.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dogbreed.local.cloud.fault_client import FaultClient
from dogbreed.local.cloud.model_deploy import deploy_model_dir, wait_in_service
from dogbreed.local.cloud.stack import load_stack
from tests.support.local_cloud import CloudWorld, local_cli
from tests.support.predictions import candidate_model, served_model_version, unsure_candidate
from tests.support.stores import api_snapshot, assert_api_reconciles
from tests.support.traffic import Traffic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

ROLLBACK_ALARMS = ("EndpointServerErrorsAlarm", "EndpointLatencyAlarm", "LowConfidenceAnswersAlarm")
CANARY_PERCENT = 50
# A rolled-back update never bakes this long: the alarm fires first (the latency alarm needs three
# breaching 15 s periods at the suite's metric scale).
LONG_BAKE_SECONDS = 150
UPDATE_TIMEOUT_SECONDS = 300.0


def alarm_names() -> list[str]:
    stack = load_stack()
    return [stack.physical_name(logical_id) for logical_id in ROLLBACK_ALARMS]


def canary_config(bake_seconds: int) -> dict[str, Any]:
    """The DeploymentConfig the pipeline's UpdateEndpoint sends with RolloutTrafficRouting=CANARY."""
    return guarded_config(
        {
            "Type": "CANARY",
            "WaitIntervalInSeconds": bake_seconds,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": CANARY_PERCENT},
        }
    )


def guarded_config(traffic_routing: dict[str, Any]) -> dict[str, Any]:
    """A blue/green DeploymentConfig with the stack's rollback alarms, as the pipeline sends it."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing,
            "TerminationWaitInSeconds": 0,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names()]},
    }


def alarms_ok(world: CloudWorld) -> bool:
    alarms = world.client("cloudwatch").describe_alarms(AlarmNames=alarm_names())["MetricAlarms"]
    return len(alarms) == len(ROLLBACK_ALARMS) and all(alarm["StateValue"] == "OK" for alarm in alarms)


@pytest.fixture
def faults(cloud_world: CloudWorld) -> Iterator[FaultClient]:
    """No fault, the rollback alarms OK and the endpoint InService, before and after."""
    client = FaultClient(cloud_world.state)
    client.clear()
    wait_in_service(cloud_world.state, timeout=180)
    wait_for(lambda: alarms_ok(cloud_world), timeout=120, what="the rollback alarms to be OK", interval=1.0)
    yield client
    client.clear()
    wait_in_service(cloud_world.state, timeout=180)


@dataclass
class Update:
    """An UpdateEndpoint with guardrails under traffic: DescribeEndpoint as seen while it ran."""

    started: float
    ended: float
    pending: list[dict[str, Any]]
    described: dict[str, Any]
    status_while_baking: str  # `dogbreed local status` during a bake


def update_under_traffic(
    world: CloudWorld, traffic: Traffic, model_dir: Path, deployment_config: dict[str, Any]
) -> Update:
    sagemaker = world.client("sagemaker")
    endpoint = world.outputs["EndpointName"]
    name = f"candidate-{uuid.uuid4().hex[:8]}"
    update = threading.Thread(
        target=deploy_model_dir,
        args=(world.state, model_dir),
        kwargs={"name": name, "timeout": UPDATE_TIMEOUT_SECONDS, "deployment_config": deployment_config},
    )
    started = time.monotonic()
    update.start()
    pending: list[dict[str, Any]] = []
    shown = ""
    while update.is_alive():
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        if "PendingDeploymentSummary" in described:
            pending.append(described)
            stage = described["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]
            if not shown and stage["Status"] == "Baking":
                shown = local_cli("status", "--state-dir", str(world.state_dir), timeout=60).stdout
        time.sleep(0.5)
    update.join()
    ended = time.monotonic()
    time.sleep(2)  # requests after the update
    return Update(started, ended, pending, sagemaker.describe_endpoint(EndpointName=endpoint), shown)


def assert_baked_on_the_canary(update: Update, config_name_prefix: str = "candidate-") -> None:
    """DescribeEndpoint showed the update in progress: Updating, the new config pending, baking."""
    assert update.pending, "DescribeEndpoint never showed the pending deployment"
    assert all(d["EndpointStatus"] == "Updating" for d in update.pending)
    summaries = [d["PendingDeploymentSummary"] for d in update.pending]
    assert all(s["EndpointConfigName"].startswith(config_name_prefix) for s in summaries)
    stages = [s["ProductionVariants"][0]["VariantStatus"][0] for s in summaries]
    assert any(
        stage["Status"] == "Baking" and stage["StatusMessage"].startswith(f"{CANARY_PERCENT}% of traffic")
        for stage in stages
    ), [(stage["Status"], stage["StatusMessage"]) for stage in stages]


# make test: the demo's second run deploys through a canary (tests/e2e/test_pipeline_e2e.py).
@pytest.mark.reliability
def test_a_canary_bakes_then_takes_all_traffic(
    cloud_world: CloudWorld, faults: FaultClient, tiny_model_dir: Path, tmp_path: Path
) -> None:
    # Given the endpoint serving, and a candidate model
    old_version = served_model_version(cloud_world)
    candidate = candidate_model(tiny_model_dir, tmp_path / "candidate", f"canary-{uuid.uuid4().hex[:6]}")
    before = api_snapshot(cloud_world)

    # When it is deployed with a canary while requests keep arriving
    with Traffic(cloud_world) as traffic:
        time.sleep(1)
        update = update_under_traffic(cloud_world, traffic, candidate, canary_config(bake_seconds=10))
    after = api_snapshot(cloud_world)

    # Then the canary baked, and the endpoint serves the candidate's config with no failure
    assert_baked_on_the_canary(update)
    # And `dogbreed local status` showed the update with its traffic split
    assert "updating to candidate-" in update.status_while_baking, update.status_while_baking
    assert f"(CANARY): Baking, traffic new {CANARY_PERCENT}% / old {100 - CANARY_PERCENT}%" in (
        update.status_while_baking
    )
    described = update.described
    assert described["EndpointStatus"] == "InService" and "FailureReason" not in described
    assert described["EndpointConfigName"].startswith("candidate-")
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
        "Type"
    ] == ("CANARY")
    # And during the canary both models answered; afterwards only the candidate
    [new_version] = traffic.versions(update.ended + 1, time.monotonic())
    assert new_version != old_version
    assert {old_version, new_version} <= traffic.versions(update.started, update.ended)
    # And no request failed or was lost: every 201 is stored exactly once
    assert all(response.status_code == 201 for _, response in traffic.answers)
    assert_api_reconciles(before, after, traffic.created_ids())


# make test: the demo's third run is rolled back by the 5xx alarm (tests/e2e/test_pipeline_e2e.py), and
# the low-confidence rollback below runs the same rollback path under API traffic.
@pytest.mark.reliability
@pytest.mark.parametrize(
    ("mode", "alarm"),
    [("server-error", "EndpointServerErrorsAlarm"), ("slow", "EndpointLatencyAlarm")],
    ids=["5xx", "latency"],
)
def test_a_broken_canary_is_rolled_back_by_its_alarm(
    cloud_world: CloudWorld,
    faults: FaultClient,
    tiny_model_dir: Path,
    tmp_path: Path,
    mode: str,
    alarm: str,
) -> None:
    # Given the endpoint serving, and a candidate whose model server answers 500 or 1.5 s late
    endpoint = cloud_world.outputs["EndpointName"]
    sagemaker = cloud_world.client("sagemaker")
    config_before = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    old_version = served_model_version(cloud_world)
    candidate = candidate_model(tiny_model_dir, tmp_path / "candidate", f"broken-{uuid.uuid4().hex[:6]}")
    fault = faults.add("endpoint_update", resource=endpoint, error=mode, delay_seconds=1.5)
    before = api_snapshot(cloud_world)

    # When it is deployed with a canary while requests keep arriving
    with Traffic(cloud_world) as traffic:
        time.sleep(1)
        update = update_under_traffic(cloud_world, traffic, candidate, canary_config(LONG_BAKE_SECONDS))
    after = api_snapshot(cloud_world)

    # Then the alarm fired during the bake and SageMaker rolled back: InService on the old config,
    # the reason naming the alarm, nothing pending
    assert faults.get(fault["id"])["hits"] == 1
    described = update.described
    assert load_stack().physical_name(alarm) in described.get("FailureReason", ""), described
    assert_baked_on_the_canary(update)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == config_before
    assert "PendingDeploymentSummary" not in described
    assert "rolled back" in described["FailureReason"]
    assert load_stack().physical_name(alarm) in described["FailureReason"]
    assert update.ended - update.started < LONG_BAKE_SECONDS
    # And the old model answered before, during and after the update, and alone after it
    assert old_version in traffic.versions(0, update.started)
    assert old_version in traffic.versions(update.started, update.ended)
    assert traffic.versions(update.ended + 1, time.monotonic()) == {old_version}
    # And nothing was lost: every 201 is stored exactly once; a request the broken canary failed got
    # the API's endpoint error and left nothing behind
    failures = [response for _, response in traffic.answers if response.status_code != 201]
    assert all(response.status_code in (502, 503, 504) for response in failures), [
        (response.status_code, response.text) for response in failures
    ]
    if mode == "server-error":
        assert failures, "the broken canary never answered a request"
    assert_api_reconciles(before, after, traffic.created_ids())


def test_a_candidate_answering_nonsense_is_rolled_back_by_the_low_confidence_alarm(
    cloud_world: CloudWorld, faults: FaultClient, tiny_model_dir: Path, tmp_path: Path
) -> None:
    # Given the endpoint serving, and a candidate that serves fine but is unsure of every answer
    # (its classifier zeroed: 1/3 per breed, under the stack's LowConfidenceProbability)
    endpoint = cloud_world.outputs["EndpointName"]
    config_before = cloud_world.client("sagemaker").describe_endpoint(EndpointName=endpoint)[
        "EndpointConfigName"
    ]
    old_version = served_model_version(cloud_world)
    candidate = unsure_candidate(tiny_model_dir, tmp_path / "candidate", f"unsure-{uuid.uuid4().hex[:6]}")
    before = api_snapshot(cloud_world)

    # When it is deployed all at once (the stack's default routing) with a long bake, under traffic
    routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": LONG_BAKE_SECONDS}
    with Traffic(cloud_world) as traffic:
        time.sleep(1)
        update = update_under_traffic(cloud_world, traffic, candidate, guarded_config(routing))
    after = api_snapshot(cloud_world)

    # Then the functions' LowConfidence metric put the alarm in ALARM during the bake, and SageMaker
    # rolled back to the old config, naming the alarm
    described = update.described
    alarm = load_stack().physical_name("LowConfidenceAnswersAlarm")
    assert alarm in described.get("FailureReason", ""), described
    assert "rolled back" in described["FailureReason"]
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == config_before
    assert update.ended - update.started < LONG_BAKE_SECONDS
    # And the candidate did answer (every answer of it unsure), the old model answered before the
    # shift and alone after the rollback
    unsure = [
        r.json()
        for _, r in traffic.answers
        if r.status_code == 201 and r.json()["model_version"] != old_version
    ]
    assert unsure and all(answer["predictions"][0]["probability"] < 0.5 for answer in unsure)
    assert old_version in traffic.versions(0, update.started)
    assert traffic.versions(update.ended + 1, time.monotonic()) == {old_version}
    # And no request failed or was lost: every 201 is stored exactly once
    assert all(response.status_code == 201 for _, response in traffic.answers)
    assert_api_reconciles(before, after, traffic.created_ids())
