"""API call -> IAM action, resource ARN and condition keys (dogbreed.aws.iam.api_authorization), from
the Service Authorization Reference; and what a Step Functions Task asks of the state machine's role
(dogbreed.aws.iam.service_behaviour)."""

from __future__ import annotations

from typing import Any

import pytest

from dogbreed.aws.iam.api_authorization import UnmappedOperation, requests_for_call
from dogbreed.aws.iam.service_behaviour import Account, StepFunctionsFacts, image_pull_calls, task_calls

REGION, ACCOUNT = "us-east-1", "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/dogbreed-local-SageMakerExecutionRole"
HERE = Account(REGION, ACCOUNT)


def requests(prefix: str, operation: str, **params: Any) -> list[str]:
    return [str(r) for r in requests_for_call(prefix, operation, params, region=REGION, account=ACCOUNT)]


@pytest.mark.parametrize(
    ("prefix", "operation", "params", "expected"),
    [
        (
            "s3",
            "ListObjectsV2",
            {"Bucket": "b", "Prefix": "code/"},
            ["s3:ListBucket on arn:aws:s3:::b s3:prefix=code/"],
        ),
        ("s3", "HeadObject", {"Bucket": "b", "Key": "d/m.json"}, ["s3:GetObject on arn:aws:s3:::b/d/m.json"]),
        ("s3", "CreateMultipartUpload", {"Bucket": "b", "Key": "m"}, ["s3:PutObject on arn:aws:s3:::b/m"]),
        (
            "lambda",
            "Invoke",
            {"FunctionName": "f"},
            [f"lambda:InvokeFunction on arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"],
        ),
        (
            "dynamodb",
            "PutItem",
            {"TableName": "t", "Item": {}},
            [f"dynamodb:PutItem on arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"],
        ),
        (
            "sagemaker",
            "InvokeEndpoint",
            {"EndpointName": "dogbreed-local"},
            [f"sagemaker:InvokeEndpoint on arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/dogbreed-local"],
        ),
        (
            "sqs",
            "SendMessage",
            {"QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/q", "MessageBody": "x"},
            [f"sqs:SendMessage on arn:aws:sqs:{REGION}:{ACCOUNT}:q"],
        ),
        (
            "cloudwatch",
            "PutMetricData",
            {"Namespace": "/aws/sagemaker/TrainingJobs"},
            ["cloudwatch:PutMetricData on * cloudwatch:namespace=/aws/sagemaker/TrainingJobs"],
        ),
    ],
)
def test_an_api_call_is_the_action_the_reference_links_on_the_resource_it_names(
    prefix: str, operation: str, params: dict[str, Any], expected: list[str]
) -> None:
    assert requests(prefix, operation, **params) == expected


def test_an_object_version_is_read_with_get_object_version() -> None:
    [request] = requests_for_call(
        "s3", "GetObject", {"Bucket": "b", "Key": "k", "VersionId": "3"}, region=REGION, account=ACCOUNT
    )

    assert (request.action, request.resource) == ("s3:GetObjectVersion", "arn:aws:s3:::b/k")


def test_update_endpoint_is_authorized_on_the_endpoint_and_on_its_new_config() -> None:
    # Both are required resource types of sagemaker:UpdateEndpoint in the reference.
    assert requests("sagemaker", "UpdateEndpoint", EndpointName="e", EndpointConfigName="dogbreed-1-R") == [
        f"sagemaker:UpdateEndpoint on arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e",
        f"sagemaker:UpdateEndpoint on arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/dogbreed-1-r",
    ]


def test_a_create_with_a_role_and_tags_also_passes_the_role_and_tags_the_new_resource() -> None:
    job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/train-x"

    assert requests(
        "sagemaker",
        "CreateTrainingJob",
        TrainingJobName="Train-X",
        RoleArn=ROLE,
        Tags=[{"Key": "k", "Value": "v"}],
    ) == [
        f"sagemaker:CreateTrainingJob on {job}",
        f"iam:PassRole on {ROLE} iam:PassedToService=sagemaker.amazonaws.com",
        f"sagemaker:AddTags on {job}",
    ]


def test_a_role_nested_in_the_request_is_passed_too() -> None:
    passed = requests(
        "sagemaker",
        "CreateHyperParameterTuningJob",
        HyperParameterTuningJobName="hpo-1",
        TrainingJobDefinition={"RoleArn": ROLE},
    )

    assert f"iam:PassRole on {ROLE} iam:PassedToService=sagemaker.amazonaws.com" in passed


def test_an_operation_the_reference_does_not_know_cannot_be_judged() -> None:
    with pytest.raises(UnmappedOperation):
        requests_for_call("s3", "NoSuchOperation", {}, region=REGION, account=ACCOUNT)


def test_a_sync_training_task_describes_the_job_reads_its_tags_and_keeps_the_managed_rule() -> None:
    calls = list(
        task_calls(
            "role",
            "sagemaker",
            "createTrainingJob.sync",
            {"TrainingJobName": "train-1", "RoleArn": ROLE},
            HERE,
            StepFunctionsFacts(),
        )
    )

    actions = [request.action for call in calls for request in call.requests]
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"
    assert actions == [
        "sagemaker:CreateTrainingJob",
        "iam:PassRole",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:ListTags",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    ]
    assert {r.resource for call in calls[-3:] for r in call.requests} == {rule}


def test_an_sdk_task_is_its_api_call_and_a_publish_to_an_encrypted_topic_uses_its_key() -> None:
    topic, key = f"arn:aws:sns:{REGION}:{ACCOUNT}:t", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"
    facts = StepFunctionsFacts(topic_keys={topic: key})

    scaling = list(
        task_calls("role", "aws-sdk:applicationautoscaling", "describeScalableTargets", {}, HERE, facts)
    )
    publish = list(task_calls("role", "sns", "publish.waitForTaskToken", {"TopicArn": topic}, HERE, facts))

    assert [r.action for c in scaling for r in c.requests] == [
        "application-autoscaling:DescribeScalableTargets"
    ]
    assert [str(r) for c in publish for r in c.requests] == [
        f"sns:Publish on {topic}",
        f"kms:GenerateDataKey on {key}",
        f"kms:Decrypt on {key}",
    ]


def test_an_image_is_pulled_from_its_registrys_repository() -> None:
    image = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.6.0-gpu-py312"

    pulls = [str(r) for call in image_pull_calls(ROLE, image, HERE) for r in call.requests]

    repository = "arn:aws:ecr:eu-west-1:763104351884:repository/pytorch-training"
    assert pulls == [
        "ecr:GetAuthorizationToken on *",
        f"ecr:BatchCheckLayerAvailability on {repository}",
        f"ecr:GetDownloadUrlForLayer on {repository}",
        f"ecr:BatchGetImage on {repository}",
    ]
