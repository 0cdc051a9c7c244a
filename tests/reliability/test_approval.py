"""Manual approval on the shared local cloud: the real state machine (ApprovalMode=manual, tiny
pipeline settings) trains a candidate and waits at RequestApproval while API requests keep arriving
(from the candidate's registration through the wait, the answer and any deploy);
the operator answers with the real CLI (`dogbreed approvals|approve|reject --local`, a process of its
own) or does not answer at all. In every case the test reads the outcome from the stores itself (the
execution, the runs table, the model registry, the endpoint), reconciles S3 and DynamoDB with the
API's 201s (each stored exactly once, none failed) and checks which model answered when.

The stack is redeployed with manual approval for each test and put back afterwards; the endpoint
goes back to the config it served before (and the pipeline's auto scaling registration is removed),
so every run's gate compares with the same model made outside the registry (accuracy 0) and the
other tests on the cloud find it as they left it. Runs are sequential: the deploy lock admits one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dogbreed.local.cloud.lifecycle import parse_overrides
from dogbreed.local.cloud.model_deploy import wait_in_service
from dogbreed.pipeline import approval
from tests.support.local_cloud import TINY_PIPELINE, CloudWorld, dogbreed_cli, stack_parameters
from tests.support.pipeline_runs import (
    entered_states,
    execution_for,
    execution_history,
    run_records,
    upload_training_run,
)
from tests.support.predictions import served_model_version
from tests.support.stores import ApiSnapshot, api_snapshot, assert_api_reconciles
from tests.support.traffic import Traffic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

# Manual approval on the tiny pipeline; an approved candidate's blue/green update bakes 2 s.
MANUAL = {**parse_overrides(list(TINY_PIPELINE)), "ApprovalMode": "manual", "RolloutBakeSeconds": "2"}
# Long enough that an answer never races the timeout; short enough for the timed-out case.
ANSWERED_TIMEOUT_SECONDS = 900
UNANSWERED_TIMEOUT_SECONDS = 6
# How long a run waits for its answer while requests keep arriving.
WAIT_SECONDS = 3.0
RUN_TIMEOUT_SECONDS = 420.0
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@dataclass
class Run:
    """A pipeline run of the test's dataset."""

    dataset_id: str
    execution_arn: str


@pytest.fixture
def endpoint_config(cloud_world: CloudWorld) -> Iterator[str]:
    """The config the endpoint serves before the test; afterwards it serves that config again, with no
    auto scaling registered that the test's run added."""
    sagemaker = cloud_world.client("sagemaker")
    autoscaling = cloud_world.client("application-autoscaling")
    endpoint = cloud_world.outputs["EndpointName"]
    resource_id = f"endpoint/{endpoint}/variant/AllTraffic"

    def scalable_targets() -> set[str]:
        targets = autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[resource_id]
        )
        return {target["ResourceId"] for target in targets["ScalableTargets"]}

    wait_in_service(cloud_world.state, timeout=180)
    before = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    registered_before = scalable_targets()
    yield before
    for added in scalable_targets() - registered_before:
        autoscaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=added, ScalableDimension=VARIANT_DIMENSION
        )
    wait_in_service(cloud_world.state, timeout=180)
    if sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] != before:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=before)
        wait_in_service(cloud_world.state, timeout=180)


@pytest.fixture
def started(cloud_world: CloudWorld, endpoint_config: str) -> Iterator[list[Run]]:
    """The runs the test starts. One that still runs when the test ends (it failed before answering)
    is rejected once it asks, so it gives the endpoint's deploy lock back before the next run."""
    runs: list[Run] = []
    yield runs
    for run in runs:
        leave_no_run_waiting(cloud_world, run)


def leave_no_run_waiting(world: CloudWorld, run: Run) -> None:
    """Reject `run` once it asks, if it still runs, and wait for its end."""
    sfn = world.client("stepfunctions")

    def waiting_or_ended() -> approval.PendingApproval | bool:
        if sfn.describe_execution(executionArn=run.execution_arn)["status"] != "RUNNING":
            return True
        pending = approval.pending_approvals(sfn, world.outputs["TrainingPipelineArn"])
        return next((item for item in pending if item.execution_arn == run.execution_arn), False)

    found = wait_for(waiting_or_ended, timeout=RUN_TIMEOUT_SECONDS, what="the run to ask or end")
    if isinstance(found, approval.PendingApproval):
        approval.reject(sfn, found, by=__name__, reason="the test ended before it answered")
        finished(world, run)


def start_run(world: CloudWorld, tmp_path: Path, started: list[Run]) -> Run:
    """Upload a new dataset; return once its run has trained and registers its candidate."""
    dataset_id = upload_training_run(world, tmp_path, name="approval")
    execution = wait_for(
        lambda: execution_for(world, dataset_id), timeout=60, what=f"the run of {dataset_id} to start"
    )
    run = Run(dataset_id, execution["executionArn"])
    started.append(run)
    wait_until_entered(world, run, "RegisterCandidate")
    return run


def wait_until_entered(world: CloudWorld, run: Run, state: str) -> float:
    """Wait until the (running) execution entered `state`; the monotonic time it was seen there."""

    def entered() -> bool:
        described = world.client("stepfunctions").describe_execution(executionArn=run.execution_arn)
        assert described["status"] == "RUNNING", (described["status"], described.get("cause"))
        return state in entered_states(world, run.execution_arn)

    wait_for(
        entered, timeout=RUN_TIMEOUT_SECONDS, what=f"the run of {run.dataset_id} at {state}", interval=0.5
    )
    return time.monotonic()


def approval_wait_seconds(world: CloudWorld, run: Run) -> float:
    """How long the execution stayed in RequestApproval, from its history's timestamps."""
    events = execution_history(world, run.execution_arn)
    entered, exited = (
        next(event for event in events if event.get(details, {}).get("name") == "RequestApproval")
        for details in ("stateEnteredEventDetails", "stateExitedEventDetails")
    )
    return float((exited["timestamp"] - entered["timestamp"]).total_seconds())


def finished(world: CloudWorld, run: Run) -> tuple[float, dict[str, Any]]:
    """When the run's execution ended (monotonic) and its output; it must have succeeded."""

    def ended() -> dict[str, Any] | None:
        described: dict[str, Any] = world.client("stepfunctions").describe_execution(
            executionArn=run.execution_arn
        )
        return described if described["status"] != "RUNNING" else None

    execution = wait_for(ended, timeout=RUN_TIMEOUT_SECONDS, what="the run to end", interval=0.5)
    at = time.monotonic()
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    output: dict[str, Any] = json.loads(execution["output"])
    return at, output


def waiting_run_id(world: CloudWorld, run: Run) -> str:
    """The run id of `run` as `dogbreed approvals --json` lists it."""
    listed = dogbreed_cli("approvals", "--json", "--local", "--state-dir", str(world.state_dir), timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = [row for row in json.loads(listed.stdout) if row["execution_arn"] == run.execution_arn]
    assert len(rows) == 1, listed.stdout
    return str(rows[0]["run_id"])


def answer(world: CloudWorld, decision: str, run_id: str, reason: str) -> str:
    """`dogbreed approve|reject RUN --reason ... --local` as the operator types it; its output."""
    done = dogbreed_cli(
        decision, run_id, "--reason", reason, "--local", "--state-dir", str(world.state_dir), timeout=60
    )
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout


def caller_arn(world: CloudWorld) -> str:
    return str(world.client("sts").get_caller_identity()["Arn"])


def package_of(world: CloudWorld, output: dict[str, Any]) -> dict[str, Any]:
    package: dict[str, Any] = world.client("sagemaker").describe_model_package(
        ModelPackageName=output["model_package"]
    )
    return package


def assert_stored_exactly_once(before: ApiSnapshot, world: CloudWorld, traffic: Traffic) -> None:
    """No request failed, and every 201 is in S3 and DynamoDB exactly once (the test's own reads)."""
    failed = [
        (response.status_code, response.text)
        for _, response in traffic.answers
        if response.status_code != 201
    ]
    assert traffic.answers and not failed, failed
    assert_api_reconciles(before, api_snapshot(world), traffic.created_ids())


def test_an_approved_candidate_deploys_while_the_old_model_answers_until_it_takes_over(
    cloud_world: CloudWorld, endpoint_config: str, started: list[Run], tmp_path: Path
) -> None:
    # Given manual approval, the endpoint serving a model, and requests arriving throughout
    with stack_parameters(cloud_world, {**MANUAL, "ApprovalTimeoutSeconds": str(ANSWERED_TIMEOUT_SECONDS)}):
        old_version = served_model_version(cloud_world)
        before = api_snapshot(cloud_world)
        # When a run trains, asks, waits, and the operator approves it with the CLI
        run = start_run(cloud_world, tmp_path, started)
        with Traffic(cloud_world) as traffic:
            asked = wait_until_entered(cloud_world, run, "RequestApproval")
            run_id = waiting_run_id(cloud_world, run)
            time.sleep(WAIT_SECONDS)
            answered = time.monotonic()
            printed = answer(cloud_world, "approve", run_id, "canary looks fine")
            ended, output = finished(cloud_world, run)
            time.sleep(2)  # requests after the run

    # Then the run deployed its candidate, and the endpoint serves its model
    assert (output["run_id"], output["outcome"]) == (run_id, "deployed")
    sagemaker = cloud_world.client("sagemaker")
    described = sagemaker.describe_endpoint(EndpointName=cloud_world.outputs["EndpointName"])
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] != endpoint_config
    # And the run record and the registry say who approved, why and when, as the CLI printed it
    by = caller_arn(cloud_world)
    [record] = run_records(cloud_world, run.dataset_id)
    recorded = json.loads(record["detail"])["approval"]
    assert (record["status"], recorded["decision"], recorded["by"]) == ("deployed", "approved", by)
    assert recorded["reason"] == "canary looks fine" and recorded["at"]
    package = package_of(cloud_world, output)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == f"approved by {by}: canary looks fine"
    assert f"run {run_id}: approved" in printed
    assert f"by      {by}" in printed and f"at      {recorded['at']}" in printed
    # And the old model answered alone until the approval, the new one alone after the run
    new_version = output["model_version"]
    assert traffic.versions(0, answered) == {old_version}
    assert traffic.versions(asked, answered) == {old_version}
    assert traffic.versions(ended + 1, time.monotonic()) == {new_version}
    assert traffic.versions(0, time.monotonic()) == {old_version, new_version}
    # And no request failed or was lost
    assert_stored_exactly_once(before, cloud_world, traffic)


# make test: test_a_manual_rejection_leaves_the_endpoint_and_records_why (tests/functional/
# test_pipeline_paths.py) runs the rejection on the real state machine; the approved test here, the
# cloud's approval path.
@pytest.mark.reliability
def test_a_rejected_candidate_is_recorded_with_who_and_why_and_the_old_model_keeps_answering(
    cloud_world: CloudWorld, endpoint_config: str, started: list[Run], tmp_path: Path
) -> None:
    # Given manual approval, the endpoint serving a model, and requests arriving throughout
    with stack_parameters(cloud_world, {**MANUAL, "ApprovalTimeoutSeconds": str(ANSWERED_TIMEOUT_SECONDS)}):
        old_version = served_model_version(cloud_world)
        before = api_snapshot(cloud_world)
        # When a run trains, asks, waits, and the operator rejects it with the CLI
        run = start_run(cloud_world, tmp_path, started)
        with Traffic(cloud_world) as traffic:
            asked = wait_until_entered(cloud_world, run, "RequestApproval")
            run_id = waiting_run_id(cloud_world, run)
            time.sleep(WAIT_SECONDS)
            printed = answer(cloud_world, "reject", run_id, "worse on pugs than the shelter's photos")
            _, output = finished(cloud_world, run)
            time.sleep(2)

    # Then the run ended rejected, and the endpoint still serves its config
    assert (output["run_id"], output["outcome"]) == (run_id, "rejected")
    described = cloud_world.client("sagemaker").describe_endpoint(
        EndpointName=cloud_world.outputs["EndpointName"]
    )
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", endpoint_config)
    # And the run record and the registry say who rejected, why and when
    by = caller_arn(cloud_world)
    [record] = run_records(cloud_world, run.dataset_id)
    recorded = json.loads(record["detail"])["approval"]
    assert (record["status"], recorded["decision"], recorded["by"]) == ("rejected", "rejected", by)
    assert recorded["reason"] == "worse on pugs than the shelter's photos" and recorded["at"]
    package = package_of(cloud_world, output)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert (
        package["ApprovalDescription"]
        == f"approval: rejected by {by}: worse on pugs than the shelter's photos"
    )
    assert f"run {run_id}: rejected" in printed and f"at      {recorded['at']}" in printed
    # And the old model answered alone throughout, and no request failed or was lost
    assert traffic.versions(asked, time.monotonic()) == {old_version}
    assert traffic.versions(0, time.monotonic()) == {old_version}
    assert_stored_exactly_once(before, cloud_world, traffic)


# make test: tests/functional/test_pipeline_paths.py::test_an_unanswered_approval_times_out_as_a_rejection.
@pytest.mark.reliability
def test_an_unanswered_approval_times_out_as_a_rejection_and_the_old_model_keeps_answering(
    cloud_world: CloudWorld, endpoint_config: str, started: list[Run], tmp_path: Path
) -> None:
    # Given manual approval with a short timeout, and requests arriving throughout
    with stack_parameters(cloud_world, {**MANUAL, "ApprovalTimeoutSeconds": str(UNANSWERED_TIMEOUT_SECONDS)}):
        old_version = served_model_version(cloud_world)
        before = api_snapshot(cloud_world)
        # When a run trains, asks, and nobody answers
        run = start_run(cloud_world, tmp_path, started)
        with Traffic(cloud_world) as traffic:
            asked = wait_until_entered(cloud_world, run, "RequestApproval")
            ended, output = finished(cloud_world, run)
            time.sleep(2)
        # And the operator answers after the timeout
        late = dogbreed_cli(
            "approve", output["run_id"], "--local", "--state-dir", str(cloud_world.state_dir), timeout=60
        )

    # Then the run waited its timeout and ended rejected as timed out; the endpoint kept its config
    assert approval_wait_seconds(cloud_world, run) >= UNANSWERED_TIMEOUT_SECONDS
    assert output["outcome"] == "rejected"
    assert output["approval"] == {"decision": "timed_out", "after_seconds": UNANSWERED_TIMEOUT_SECONDS}
    described = cloud_world.client("sagemaker").describe_endpoint(
        EndpointName=cloud_world.outputs["EndpointName"]
    )
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", endpoint_config)
    # And the run record and the registry say so
    [record] = run_records(cloud_world, run.dataset_id)
    assert record["status"] == "rejected"
    assert json.loads(record["detail"])["approval"]["decision"] == "timed_out"
    package = package_of(cloud_world, output)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"] == f"approval: no answer within {UNANSWERED_TIMEOUT_SECONDS} s"
    # And the late answer was refused with one line
    assert late.returncode == 1
    assert late.stderr == f"dogbreed approve: no run {output['run_id']} is waiting for approval\n"
    # And the old model answered alone throughout, and no request failed or was lost
    assert traffic.versions(asked, ended) == {old_version}
    assert traffic.versions(0, time.monotonic()) == {old_version}
    assert_stored_exactly_once(before, cloud_world, traffic)
