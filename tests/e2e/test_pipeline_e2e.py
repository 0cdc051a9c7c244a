"""The whole product on the local cloud, on tiny settings: `dogbreed local demo` deploys
template.yaml, uploads a synthetic dataset (manifest.json last), the real state machine tunes,
gates, deploys and registers auto scaling, then images go through incoming/ and the HTTP API.
Every assertion reads the stores (Step Functions, SageMaker, application-autoscaling, S3, DynamoDB);
SageMaker is read through its own API at AWS_ENDPOINT_URL, with boto3 and (where installed) the AWS CLI.
Every AWS call each role of the stack made in the run is evaluated against template.yaml's policies
(`dogbreed local iam-report`): a denied call fails, and so does a granted permission no call used
that docs/security.md does not justify.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from model_monitor.capture import parse_lines
from prediction.item import item_key

from dogbreed.aws.iam.report import IamReport, render
from dogbreed.local.cloud.state import CloudState
from dogbreed.local.iam.collect import local_iam_report
from tests.support.local_cloud import aws_sagemaker
from tests.support.pipeline_demo import demo_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`dogbreed local demo` run once on a fresh cloud; the cloud stays up for the module's tests."""
    with demo_run(tmp_path_factory.mktemp("e2e"), []) as run:
        yield run


def test_the_pipeline_trains_deploys_scales_and_serves(demo: dict[str, Any]) -> None:
    code, state, summary = demo["code"], demo["state"], demo["summary"]
    sfn = state.client("stepfunctions")
    s3 = state.client("s3")
    dynamodb = state.client("dynamodb")
    autoscaling = state.client("application-autoscaling")
    outputs = state.outputs

    first = sfn.describe_execution(executionArn=summary["execution_arn"])
    assert first["status"] == "SUCCEEDED", first
    output = json.loads(first["output"])
    assert output["outcome"] == "deployed"

    endpoint = state.client("sagemaker").describe_endpoint(EndpointName=outputs["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService"
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert any(p["ResourceId"] == f"endpoint/{outputs['EndpointName']}/variant/AllTraffic" for p in policies)
    # ... what serves is the registry's approved package (the canary run's, after the rollout step)
    sagemaker = state.client("sagemaker")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    serving = summary["rollout"]["canary"]["output"]
    assert model["PrimaryContainer"]["ModelPackageName"] == serving["model_package"]
    package = sagemaker.describe_model_package(ModelPackageName=output["model_package"])
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["dataset_id"] == output["dataset_id"]
    run = dynamodb.get_item(TableName=outputs["RunsTableName"], Key={"run_id": {"S": output["run_id"]}})
    assert run["Item"]["status"]["S"] == "deployed"
    tags = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]
    assert {"Key": "dogbreed:stack", "Value": state.stack_name} in tags

    bucket = outputs["InferenceBucketName"]
    incoming = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")["Contents"]]
    assert len(incoming) == 4
    for key in incoming:
        relative = key.removeprefix("incoming/")
        if key.endswith("not-a-dog.jpg"):
            rejection = json.loads(
                s3.get_object(Bucket=bucket, Key=f"rejected/{relative}.json")["Body"].read()
            )
            assert rejection["reason"]["code"] == "not_an_image"
            continue
        result = json.loads(s3.get_object(Bucket=bucket, Key=f"results/{relative}.json")["Body"].read())
        item = dynamodb.get_item(
            TableName=outputs["PredictionsTableName"],
            Key=item_key(result["prediction_id"]),
        )
        assert "Item" in item
    assert summary.get("api_responses") and all(r["status"] == 201 for r in summary["api_responses"])
    assert code == 0


def test_a_second_run_deploys_through_a_canary_and_a_broken_third_is_rolled_back(
    demo: dict[str, Any],
) -> None:
    state, summary = demo["state"], demo["summary"]
    sfn, sagemaker, dynamodb = (
        state.client("stepfunctions"),
        state.client("sagemaker"),
        state.client("dynamodb"),
    )
    outputs = state.outputs
    first = json.loads(sfn.describe_execution(executionArn=summary["execution_arn"])["output"])
    canary, broken = summary["rollout"]["canary"], summary["rollout"]["broken"]

    # Three runs: the first created the endpoint, the second deployed through a canary, the third
    # was rolled back by the 5xx alarm (the execution's history and the runs table say so)
    executions = sfn.list_executions(stateMachineArn=outputs["TrainingPipelineArn"])["executions"]
    assert sorted(item["status"] for item in executions) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    [failed] = [item for item in executions if item["status"] == "FAILED"]
    failure = sfn.describe_execution(executionArn=failed["executionArn"])
    assert failure["error"] == "DeploymentRolledBack"
    assert "EndpointServerErrorsAlarm" in failure["cause"], failure["cause"]
    second = canary["output"]
    assert second["outcome"] == "deployed" and second["model_version"] != first["model_version"]
    assert (second["rollout"]["action"], second["rollout"]["traffic_routing"]) == ("update", "CANARY")
    assert second["rollout"]["replaced_version"] == first["model_version"]
    # ... and the endpoint serves the canary run's model, with no update pending
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService" and "PendingDeploymentSummary" not in endpoint
    assert endpoint["EndpointConfigName"] == second["model_version"]
    assert "rolled back" in endpoint.get("FailureReason", ""), endpoint

    # During the canary both models answered; during the broken run only the canary's model
    # answered successfully, its broken successor's 500s reached callers as 502s
    assert {first["model_version"], second["model_version"]} <= set(canary["answers"]), canary
    assert not canary["failed"], canary["failed"]
    assert set(broken["answers"]) == {second["model_version"]}, broken
    assert broken["failed"] and set(broken["failed"]) == {"502"}, broken["failed"]
    assert broken["served_after"] == [second["model_version"]]
    # And nothing answered 201 is missing: each prediction is in DynamoDB (read here, not from the
    # demo's own count)
    for prediction_id in canary["prediction_ids"] + broken["prediction_ids"]:
        item = dynamodb.get_item(TableName=outputs["PredictionsTableName"], Key=item_key(prediction_id))
        assert "Item" in item, prediction_id


def test_the_deployed_model_is_its_trials_or_within_the_tolerance_of_it(demo: dict[str, Any]) -> None:
    output = demo["summary"]["execution_output"]
    if output["source"] == "final":
        assert output["test_acc"] >= output["trial_test_acc"] - 0.02  # FinalModelTolerance's default
    else:  # the trial's artifact was deployed, and the run says why
        assert output["source"] == "trial" and output["source_reason"]


def test_boto3_sees_the_pipelines_tuning_job_training_jobs_and_endpoint(demo: dict[str, Any]) -> None:
    sagemaker = demo["state"].client("sagemaker")

    tunings = sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    jobs = sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    endpoints = sagemaker.list_endpoints(StatusEquals="InService")["Endpoints"]

    assert len(tunings) == 3  # the demo's first run and the two of its rollout step
    for tuning in tunings:
        assert tuning["HyperParameterTuningJobStatus"] == "Completed"
        trials = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=tuning["HyperParameterTuningJobName"]
        )["TrainingJobSummaries"]
        assert trials and {t["TrainingJobName"] for t in trials} <= {j["TrainingJobName"] for j in jobs}
    assert all(job["TrainingJobStatus"] == "Completed" for job in jobs)
    assert [e["EndpointName"] for e in endpoints] == [demo["state"].outputs["EndpointName"]]


def test_the_aws_cli_sees_the_pipelines_training_jobs_and_endpoint(demo: dict[str, Any]) -> None:
    state: CloudState = demo["state"]
    env = {**os.environ, **state.environment()}

    jobs = aws_sagemaker(env, "list-training-jobs")["TrainingJobSummaries"]
    endpoint = aws_sagemaker(env, "describe-endpoint", "--endpoint-name", state.outputs["EndpointName"])

    assert jobs and all(job["TrainingJobStatus"] == "Completed" for job in jobs)
    assert endpoint["EndpointStatus"] == "InService"


@pytest.fixture(scope="module")
def iam_report(demo: dict[str, Any]) -> IamReport:
    """Every call every role of the stack made in the demo, evaluated against template.yaml's policies."""
    report = local_iam_report(demo["state"])
    print("\n" + render(report))  # the IAM report of the run (pytest -s shows it)
    return report


def test_the_endpoint_captures_its_traffic_and_the_monitor_compares_it(demo: dict[str, Any]) -> None:
    state, drift = demo["state"], demo["summary"]["drift"]
    s3 = state.client("s3")
    bucket, endpoint = state.outputs["DataBucketName"], state.outputs["EndpointName"]
    records, errors = [], []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"data-capture/{endpoint}/AllTraffic/"
    )
    for item in [item for page in pages for item in page.get("Contents", [])]:
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
        parsed = parse_lines(body.splitlines(), source=item["Key"])
        records += parsed.records
        errors += parsed.errors

    assert errors == []
    first, later = drift["in_distribution"]["reports"][0], drift["off_distribution"]["reports"][0]
    # Every invocation is captured (100 %); the second window holds the first one's and the inverted batch.
    assert len(records) >= later["records"] > first["records"] > 0
    # Every captured answer is a deployed model's: the first run's (its drift windows) or, from the
    # rollout step on, the canary run's (the broken candidate's 500s carry no model version)
    served = {later["model_version"], demo["summary"]["rollout"]["canary"]["output"]["model_version"]}
    answers = [json.loads(r.endpoint_output.body()) for r in records if r.endpoint_output]
    assert later["model_version"] in {answer.get("model_version") for answer in answers}
    assert {answer["model_version"] for answer in answers if "model_version" in answer} <= served


def test_every_call_of_every_role_is_allowed_by_the_templates_policies(iam_report: IamReport) -> None:
    recorded = {
        item.principal.logical_id
        for item in iam_report.principals
        if any(origin == "recorded" for _action, _resource, origin in item.calls)
    }
    from_histories = {
        item.principal.logical_id
        for item in iam_report.principals
        if any(origin == "execution history" for _action, _resource, origin in item.calls)
    }

    assert not iam_report.unjudged, [f"{c.role_arn}: {c.service} {c.operation}" for c in iam_report.unjudged]
    assert not iam_report.unattributed, sorted({call.role_arn for call in iam_report.unattributed})
    denied = [
        f"{call.role_arn.rsplit('/', 1)[-1]}: {decision.request} ({decision.reason}; {call.service} "
        f"{call.operation}, {call.origin})"
        for call, decision in iam_report.denied
    ]
    assert not denied, "the template's policies deny:\n" + "\n".join(denied)
    # the recorder saw the functions and SageMaker (acting with the execution role), and the state
    # machine's role is read from its executions
    assert {"PredictApiFunctionRole", "PredictS3FunctionRole", "SageMakerExecutionRole"} <= recorded
    assert "TrainingPipelineRole" in from_histories


def test_every_permission_no_call_used_is_justified_in_security_md(iam_report: IamReport) -> None:
    unjustified = [f"{role}: {grant}" for role, grant in iam_report.unjustified]

    assert not unjustified, "granted, never used, not justified in docs/security.md:\n" + "\n".join(
        unjustified
    )


# Last in the module: it removes what the tests above read.
def test_teardown_after_the_demo_leaves_nothing_of_the_stack(demo: dict[str, Any]) -> None:
    state: CloudState = demo["state"]
    outputs, stack = state.outputs, state.stack_name
    s3, dynamodb, sagemaker = state.client("s3"), state.client("dynamodb"), state.client("sagemaker")
    tagged = {"Key": "dogbreed:stack", "Value": stack}
    assert sagemaker.list_models()["Models"], "the demo deployed nothing to tear down"

    teardown = ["teardown", "--local", "--yes", "--state-dir", str(demo["state_dir"])]
    done = subprocess.run(
        [sys.executable, "-m", "dogbreed", *teardown],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert not {outputs["DataBucketName"], outputs["InferenceBucketName"]} & buckets
    tables = set(dynamodb.list_tables()["TableNames"])
    assert not {outputs["PredictionsTableName"], outputs["RunsTableName"]} & tables
    # counted with SageMaker's own listings: nothing of the stack is left
    assert sagemaker.list_endpoints()["Endpoints"] == []
    for listing, key, arn in (
        (sagemaker.list_endpoint_configs, "EndpointConfigs", "EndpointConfigArn"),
        (sagemaker.list_models, "Models", "ModelArn"),
    ):
        items = [item[arn] for item in listing()[key]]
        left = [item for item in items if tagged in sagemaker.list_tags(ResourceArn=item)["Tags"]]
        assert left == [], left
