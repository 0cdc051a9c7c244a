"""`dogbreed teardown` against moto: the SageMaker resources are found by the stack tag (moto's
SageMaker keeps tags), buckets are emptied whatever their versioning, the local stack leaves nothing
behind, and on "AWS" (moto's CloudFormation) retained resources survive while the rest goes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dogbreed.local.cloud.stack import deploy, load_stack
from dogbreed.stack_tags import stack_tag
from dogbreed.stack_teardown import empty_bucket, teardown_aws, teardown_local

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312"


def serve(sagemaker: Any, name: str, tags: list[dict[str, str]]) -> None:
    """A model, endpoint config and endpoint named `name`, as the pipeline creates them."""
    sagemaker.create_model(
        ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE, Tags=tags
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        Tags=tags,
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)


def names(sagemaker: Any) -> dict[str, list[str]]:
    return {
        "endpoints": [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]],
        "configs": [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sagemaker.list_models()["Models"]],
    }


def put_versions(s3: Any, bucket: str) -> None:
    """Two versions of a key, then a delete (a delete marker on a versioned bucket)."""
    s3.put_object(Bucket=bucket, Key="results/a.json", Body=b"1")
    s3.put_object(Bucket=bucket, Key="results/a.json", Body=b"2")
    s3.put_object(Bucket=bucket, Key="incoming/b.jpg", Body=b"3")
    s3.delete_object(Bucket=bucket, Key="results/a.json")


# --- buckets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("versioning", [None, "Enabled", "Suspended"])
def test_a_bucket_is_emptied_whatever_its_versioning(moto_session: Any, versioning: str | None) -> None:
    # Given a bucket with object versions and a delete marker (or plain objects when unversioned)
    s3 = moto_session.client("s3")
    s3.create_bucket(Bucket="data")
    if versioning == "Suspended":
        s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
        put_versions(s3, "data")
    if versioning:
        s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": versioning})
    put_versions(s3, "data")

    # When it is emptied
    removed = empty_bucket(s3, "data")

    # Then nothing is left, so the bucket can be deleted
    assert removed > 0
    assert not s3.list_object_versions(Bucket="data").get("Versions")
    assert not s3.list_object_versions(Bucket="data").get("DeleteMarkers")
    s3.delete_bucket(Bucket="data")


# --- the local cloud -------------------------------------------------------------------------------


def test_the_local_teardown_leaves_nothing_of_the_stack(moto_session: Any) -> None:
    # Given the local stack deployed, data in its buckets, and the pipeline's SageMaker resources
    # (one of another stack's alongside)
    stack = load_stack()
    deployment = deploy(moto_session, stack)
    s3, sagemaker = moto_session.client("s3"), moto_session.client("sagemaker")
    for bucket in ("DataBucket", "InferenceBucket"):
        put_versions(s3, deployment.physical_names[bucket])
    serve(sagemaker, "dogbreed-endpoint", [stack_tag(stack.stack_name)])
    serve(sagemaker, "other-endpoint", [stack_tag("another-stack")])

    # When it is torn down
    report = teardown_local(moto_session, None, stack, log=lambda _: None)

    # Then no bucket, table, queue, state machine, alarm, rule, endpoint, config or model of it is left
    assert report.sagemaker.endpoints == ["dogbreed-endpoint"]
    assert names(sagemaker) == {
        "endpoints": ["other-endpoint"],
        "configs": ["other-endpoint"],
        "models": ["other-endpoint"],
    }
    assert not s3.list_buckets()["Buckets"]
    assert not moto_session.client("dynamodb").list_tables()["TableNames"]
    assert not moto_session.client("sqs").list_queues().get("QueueUrls")
    assert not moto_session.client("stepfunctions").list_state_machines()["stateMachines"]
    assert not moto_session.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert not moto_session.client("events").list_rules()["Rules"]
    assert not report.retained


def test_a_prod_local_stack_keeps_its_retained_data_unless_asked(moto_session: Any) -> None:
    stack = load_stack({"Stage": "prod"})
    deploy(moto_session, stack)

    report = teardown_local(moto_session, None, stack, log=lambda _: None)

    kept = {item.split()[1] for item in report.retained}
    assert kept == {
        stack.physical_name(lid)
        for lid in ("DataBucket", "InferenceBucket", "RunsTable", "PredictionsTable", "IdempotencyTable")
    }
    assert len(moto_session.client("s3").list_buckets()["Buckets"]) == 2

    teardown_local(moto_session, None, stack, delete_retained=True, log=lambda _: None)
    assert not moto_session.client("s3").list_buckets()["Buckets"]
    assert not moto_session.client("dynamodb").list_tables()["TableNames"]


# --- AWS (moto's CloudFormation) -------------------------------------------------------------------

PLAIN_TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
    "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    "Resources": {
        "ScratchBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "scratch-bucket"}},
        "DataBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "Properties": {"BucketName": "data-bucket"},
        },
    },
}


def test_on_aws_the_stack_is_deleted_after_its_buckets_are_emptied_and_retained_data_is_kept(
    moto_session: Any,
) -> None:
    # Given a stack with a bucket it deletes and one it retains, both holding versions
    cloudformation, s3 = moto_session.client("cloudformation"), moto_session.client("s3")
    cloudformation.create_stack(StackName="dogbreed-dev", TemplateBody=json.dumps(PLAIN_TEMPLATE))
    for bucket in ("scratch-bucket", "data-bucket"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        put_versions(s3, bucket)
    serve(moto_session.client("sagemaker"), "dogbreed-dev-endpoint", [stack_tag("dogbreed-dev")])

    # When it is torn down
    report = teardown_aws(moto_session, "dogbreed-dev", log=lambda _: None)

    # Then its endpoint and the stack are gone, the retained bucket and its data are not
    assert report.sagemaker.endpoints == ["dogbreed-dev-endpoint"]
    assert set(report.emptied) == {"scratch-bucket"}
    with pytest.raises(ClientError):
        cloudformation.describe_stacks(StackName="dogbreed-dev")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["data-bucket"]
    assert s3.list_object_versions(Bucket="data-bucket").get("Versions")
    assert report.retained == ["AWS::S3::Bucket data-bucket"]
