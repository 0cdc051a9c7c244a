"""The pipeline deployed with EndpointType=serverless on the local cloud, on tiny settings: the real
state machine trains, gates and creates a serverless endpoint (no auto scaling registered), and
images dropped into incoming/ and sent to the HTTP API are classified through it, the first one
after a cold start. Assertions read the stores (Step Functions, SageMaker's API, application-
autoscaling, S3) and the IAM proof of the run: no call of any role is denied by template.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dogbreed.local.cloud.lifecycle import cloud_status
from dogbreed.local.iam.collect import local_iam_report
from tests.support.pipeline_demo import demo_run

# make test covers a serverless stack on the real state machine (tests/functional/test_pipeline_paths.py,
# test_a_serverless_stack_creates_a_serverless_endpoint_without_auto_scaling) and a real serverless
# endpoint's workers (tests/integration/test_local_sagemaker_serverless.py); this whole run on the local
# cloud is make reliability's.
pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    overrides = ["EndpointType=serverless", "ServerlessMemorySizeInMB=2048", "ServerlessMaxConcurrency=4"]
    # The safe-rollout step (two more runs) is the instance e2e's; this module is about serverless.
    with demo_run(tmp_path_factory.mktemp("e2e-serverless"), overrides, rollout=False) as run:
        yield run


def test_the_pipeline_deploys_a_serverless_endpoint_and_predicts_through_it(demo: dict[str, Any]) -> None:
    state, summary, outputs = demo["state"], demo["summary"], demo["state"].outputs
    sfn, s3, sagemaker = state.client("stepfunctions"), state.client("s3"), state.client("sagemaker")

    # The run deployed a serverless endpoint
    [execution] = sfn.list_executions(stateMachineArn=outputs["TrainingPipelineArn"])["executions"]
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])
    assert (output["outcome"], output["endpoint_type"]) == ("deployed", "serverless")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService"
    [variant] = endpoint["ProductionVariants"]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 4}
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert "InstanceType" not in config["ProductionVariants"][0]
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["EnableNetworkIsolation"] is False
    # ... with nothing registered for auto scaling
    autoscaling = state.client("application-autoscaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []

    # Predictions went through it: every dropped image has a result or a rejection in S3, and the
    # API answered 201
    bucket = outputs["InferenceBucketName"]
    incoming = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")["Contents"]]
    results = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="results/").get("Contents", [])}
    rejected = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="rejected/").get("Contents", [])}
    assert len(incoming) == 4
    for key in incoming:
        relative = key.removeprefix("incoming/")
        expected = (
            f"rejected/{relative}.json" if key.endswith("not-a-dog.jpg") else f"results/{relative}.json"
        )
        assert expected in results | rejected, key
    api_results = {key for key in results if key.startswith("results/api/")}
    assert len(results - api_results) == 3  # the three dog images; the fourth was rejected
    responses = summary.get("api_responses")
    assert responses and all(r["status"] == 201 for r in responses)
    assert len(api_results) == len(responses)
    # ... the worker that served them was started on demand (at least one cold start)
    fleets = cloud_status(state)["sagemaker"]["fleets"]
    [fleet] = [f for f in fleets if f["EndpointName"] == outputs["EndpointName"]]
    assert fleet["Variants"][0]["Serverless"]["ColdStarts"] >= 1
    print(f"\nserverless cold start on the local cloud: {fleet['Variants'][0]['Serverless']}")
    assert demo["code"] == 0


def test_no_call_of_the_serverless_run_is_denied_by_the_templates_policies(demo: dict[str, Any]) -> None:
    report = local_iam_report(demo["state"])

    denied = [f"{call.role_arn}: {decision.request} ({decision.reason})" for call, decision in report.denied]
    assert not denied, "the template's policies deny:\n" + "\n".join(denied)
    assert not report.unjudged and not report.unattributed
