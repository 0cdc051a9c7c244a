"""The whole product on the local cloud, on tiny settings: `dogbreed local demo` deploys
template.yaml, uploads a synthetic dataset (manifest.json last), the real state machine tunes,
gates, deploys and registers auto scaling, then images go through incoming/ and the HTTP API.
Every assertion reads the stores (Step Functions, SageMaker, application-autoscaling, S3, DynamoDB).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import boto3
import pytest

from dogbreed.commands.local import sagemaker_call, stop_cloud
from dogbreed.local.cloud.demo import run_demo
from dogbreed.local.cloud.state import CloudState
from dogbreed.loopback import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TINY = [
    "MaxTuningJobs=1",
    "MaxParallelTuningJobs=1",
    "TuningEpochsMin=1",
    "TuningEpochsMax=2",
    "ReuseTuningArtifact=true",
    "ImageSize=32",
    # The pipeline's mechanics are under test here, not the tiny model's accuracy.
    "AccuracyThreshold=0.0",
]


def test_the_pipeline_trains_deploys_scales_and_serves(tmp_path: Path) -> None:
    args = argparse.Namespace(
        state_dir=tmp_path / "cloud",
        port=free_port(),
        api_port=free_port(),
        classes=3,
        per_class=16,
        size=48,
        timeout=420.0,
        parameter_overrides=TINY,
        json_summary=tmp_path / "summary.json",
    )
    try:
        code = run_demo(args)
        state = CloudState.read(args.state_dir)
        assert state is not None
        summary = json.loads(args.json_summary.read_text()) if args.json_summary.exists() else {}
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        sfn = session.client("stepfunctions", endpoint_url=state.aws_url)
        s3 = session.client("s3", endpoint_url=state.aws_url)
        dynamodb = session.client("dynamodb", endpoint_url=state.aws_url)
        autoscaling = session.client("application-autoscaling", endpoint_url=state.aws_url)
        outputs = state.outputs

        executions = sfn.list_executions(stateMachineArn=outputs["TrainingPipelineArn"])["executions"]
        assert [item["status"] for item in executions] == ["SUCCEEDED"], executions
        output = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["output"])
        assert output["outcome"] == "deployed"

        endpoint = sagemaker_call(state, "describe_endpoint", EndpointName=outputs["EndpointName"])
        assert endpoint["EndpointStatus"] == "InService"
        policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        assert any(
            p["ResourceId"] == f"endpoint/{outputs['EndpointName']}/variant/AllTraffic" for p in policies
        )
        pointer = dynamodb.get_item(
            TableName=outputs["ModelsTableName"], Key={"model_version": {"S": "DEPLOYED"}}
        )
        assert pointer["Item"]["deployed_version"]["S"] == output["model_version"]

        bucket = outputs["InferenceBucketName"]
        incoming = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")["Contents"]]
        assert len(incoming) == 4
        for key in incoming:
            relative = key.removeprefix("incoming/")
            if key.endswith("not-a-dog.jpg"):
                rejection = json.loads(
                    s3.get_object(Bucket=bucket, Key=f"rejected/{relative}.json")["Body"].read()
                )
                assert rejection["reason"]["code"]
                continue
            result = json.loads(s3.get_object(Bucket=bucket, Key=f"results/{relative}.json")["Body"].read())
            item = dynamodb.get_item(
                TableName=outputs["PredictionsTableName"],
                Key={"prediction_id": {"S": result["prediction_id"]}},
            )
            assert "Item" in item
        assert summary.get("api_responses") and all(r["status"] == 201 for r in summary["api_responses"])
        assert code == 0
    finally:
        stop_cloud(args.state_dir)
