"""`dogbreed approve|reject|approvals` against a stack on (in-process) AWS: the real state machine on
moto waits at RequestApproval, the CLI finds the stack's pipeline through CloudFormation's outputs
(`--stack`), signs with STS GetCallerIdentity and answers; the tests read the outcome from the
execution, the registry and the runs table themselves. The same commands on the local cloud, under
traffic: tests/reliability/test_approval.py."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from dogbreed import cli
from tests.functional.pipeline_harness import Pipeline, succeeded_output

REGION = "us-east-1"


def deploy_outputs(pipeline: Pipeline) -> list[str]:
    """A CloudFormation stack named like the pipeline's whose TrainingPipelineArn output is the
    pipeline (what `sam deploy` leaves); the CLI's arguments that name it."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"TrainingPipelineArn": {"Value": pipeline.arn}},
    }
    pipeline.session.client("cloudformation").create_stack(
        StackName=pipeline.stack.stack_name, TemplateBody=json.dumps(template)
    )
    return ["--stack", pipeline.stack.stack_name, "--region", REGION]


def waiting_run(pipeline: Pipeline) -> tuple[str, list[str]]:
    """A run started and waiting at RequestApproval: its execution ARN and the CLI's stack arguments."""
    target = deploy_outputs(pipeline)
    execution_arn = pipeline.start()
    pipeline.wait_for_state(execution_arn, "RequestApproval")
    return execution_arn, target


def listed(capsys: pytest.CaptureFixture[str], target: list[str]) -> list[dict[str, Any]]:
    capsys.readouterr()  # the pipeline's in-process Lambda log lines so far are not the command's
    assert cli.main(["approvals", "--json", *target]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def caller_arn() -> str:
    return str(boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"])


def test_dogbreed_approvals_lists_the_waiting_run_with_both_models(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run waiting for approval
    pipeline = stack(ApprovalMode="manual")
    execution_arn, target = waiting_run(pipeline)

    # When the operator lists what waits, as JSON and as a table
    [row] = listed(capsys, target)
    assert cli.main(["approvals", *target]) == 0
    table = capsys.readouterr().out

    # Then the run is there with its model, the candidate's accuracy and when it asked
    assert row["execution_arn"] == execution_arn
    assert row["model_version"].endswith(row["run_id"])
    assert row["candidate"]["test_acc"] == pytest.approx(0.91)
    assert row["production"] is None and row["requested_at"]
    assert row["run_id"] in table and "0.910" in table and "dogbreed approve RUN" in table
    cli.main(["reject", row["run_id"], "--reason", "cleanup", *target])
    pipeline.wait(execution_arn)


def test_dogbreed_approve_deploys_the_run_and_records_the_callers_identity(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run waiting for approval
    pipeline = stack(ApprovalMode="manual")
    execution_arn, target = waiting_run(pipeline)
    [row] = listed(capsys, target)

    # When the operator approves it
    code = cli.main(["approve", row["run_id"], "--reason", "looks good", *target])
    printed = capsys.readouterr().out

    # Then the run deploys the candidate, and the run record and the registry name the caller
    assert code == 0
    output = succeeded_output(pipeline.wait(execution_arn))
    assert output["outcome"] == "deployed"
    record = pipeline.run_record(row["run_id"])["detail"]["approval"]
    assert (record["decision"], record["by"], record["reason"]) == ("approved", caller_arn(), "looks good")
    package = pipeline.backend.packages[output["model_package"]]
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == f"approved by {caller_arn()}: looks good"
    # And the command printed what it sent: run, decision, by and at
    assert f"run {row['run_id']}: approved" in printed
    assert f"by      {caller_arn()}" in printed and f"at      {record['at']}" in printed


def test_dogbreed_reject_records_who_rejected_and_why_and_leaves_the_endpoint(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run waiting for approval
    pipeline = stack(ApprovalMode="manual")
    execution_arn, target = waiting_run(pipeline)
    [row] = listed(capsys, target)

    # When the operator rejects it with a reason
    code = cli.main(["reject", row["run_id"], "--reason", "too slow on pugs", *target])
    printed = capsys.readouterr().out

    # Then the run ends rejected, with who and why in the registry and the run record, and no endpoint
    assert code == 0
    output = succeeded_output(pipeline.wait(execution_arn))
    assert output["outcome"] == "rejected"
    record = pipeline.run_record(row["run_id"])
    assert record["status"] == "rejected"
    assert record["detail"]["approval"]["by"] == caller_arn()
    assert record["detail"]["approval"]["reason"] == "too slow on pugs"
    package = pipeline.backend.packages[output["model_package"]]
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"] == f"approval: rejected by {caller_arn()}: too slow on pugs"
    assert not pipeline.backend.endpoints
    assert (
        f"run {row['run_id']}: rejected" in printed
        and f"at      {record['detail']['approval']['at']}" in printed
    )


def test_answering_a_run_that_does_not_wait_fails_with_one_line(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose pipeline has no run waiting
    pipeline = stack(ApprovalMode="manual")
    target = deploy_outputs(pipeline)

    # When the operator answers a run id
    approved = cli.main(["approve", "260101000000-abc", *target])
    approve_err = capsys.readouterr().err
    rejected = cli.main(["reject", "260101000000-abc", "--reason", "no", *target])
    reject_err = capsys.readouterr().err

    # Then both fail with one line that says so, and nothing is waiting
    assert (approved, rejected) == (1, 1)
    assert approve_err == "dogbreed approve: no run 260101000000-abc is waiting for approval\n"
    assert reject_err == "dogbreed reject: no run 260101000000-abc is waiting for approval\n"
    assert listed(capsys, target) == []


def test_a_stack_that_does_not_exist_fails_with_one_line(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack()

    code = cli.main(["approve", "260101000000-abc", "--stack", "no-such-stack", "--region", REGION])

    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stack no-such-stack does not exist" in err


def test_reject_requires_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["reject", "260101000000-abc", "--local"])

    assert exited.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err
