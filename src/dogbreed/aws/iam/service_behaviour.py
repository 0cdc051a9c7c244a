"""The calls AWS services make with a stack's role on the stack's behalf, which no client of ours sends
and so no recorder sees: each from the AWS page that documents it (`DOCS`).

- Step Functions, with the state machine's role: every Task's request (optimized and AWS SDK
  integrations), and what a `.sync` integration does to follow a job (describe it, read its tags,
  the managed EventBridge rule); publishing to an SSE-KMS topic uses the topic's key.
- SageMaker, with a job's or model's execution role: pulling the container image from ECR, the
  instance metrics, and the endpoint's container logs. (The local SageMaker makes the S3 transfers and
  the training log calls itself, with the role's identity: those are recorded, not derived.)
- Lambda, with a function's role: its log stream in the function's log group, and X-Ray segments when
  tracing is active.
- Application Auto Scaling, with the caller's (the state machine's) permissions: registering a
  SageMaker variant validates that the caller may describe the endpoint and change its capacity and
  creates the service-linked role; a target tracking policy creates its CloudWatch alarms.
- EventBridge, with a rule's role: StartExecution of the state machine a rule targets.

Every call is an API call (`service prefix`, operation, request parameters) turned into authorization
requests by `api_authorization.requests_for_call`, the same rule as for the recorded calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dogbreed.aws.iam.api_authorization import requests_for_call
from dogbreed.aws.iam.policy_evaluation import AuthorizationRequest

DOCS: Final[dict[str, str]] = {
    "stepfunctions-sagemaker": "https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html",
    "stepfunctions-sdk": "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html",
    "stepfunctions-optimized": "https://docs.aws.amazon.com/step-functions/latest/dg/integrate-optimized.html",
    "stepfunctions-xray": "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-xray-tracing.html",
    "sns-sse": "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
    "sagemaker-roles": "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html",
    "sagemaker-cloudwatch": "https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html",
    "lambda-logs": "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html",
    "lambda-xray": "https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html",
    "eventbridge-targets": "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html",
    "sagemaker-autoscaling": "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html",
    "autoscaling-iam": "https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html",
}
# The service-linked role Application Auto Scaling creates for SageMaker variants on the first
# RegisterScalableTarget ("Service-linked roles for Application Auto Scaling").
AUTOSCALING_SLR_SERVICE: Final = "sagemaker.application-autoscaling.amazonaws.com"
AUTOSCALING_SLR_NAME: Final = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"

# AWS SDK integration service names (arn:aws:states:::aws-sdk:<name>:<action>) whose IAM prefix differs.
SDK_SERVICE_PREFIXES: Final[dict[str, str]] = {
    "applicationautoscaling": "application-autoscaling",
    "sfn": "states",
}
# Optimized integrations: (service, action) -> the API operation they call.
OPTIMIZED_OPERATIONS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("lambda", "invoke"): ("lambda", "Invoke"),
    ("dynamodb", "putItem"): ("dynamodb", "PutItem"),
    ("dynamodb", "getItem"): ("dynamodb", "GetItem"),
    ("dynamodb", "deleteItem"): ("dynamodb", "DeleteItem"),
    ("dynamodb", "updateItem"): ("dynamodb", "UpdateItem"),
    ("sns", "publish"): ("sns", "Publish"),
    ("sqs", "sendMessage"): ("sqs", "SendMessage"),
    ("states", "startExecution"): ("states", "StartExecution"),
}
# What a SageMaker `.sync` integration does after the create (the "Run a Job (.sync)" policies of
# DOCS["stepfunctions-sagemaker"]): describe the job until it ends, read its tags, and keep the
# managed EventBridge rule that reports its status changes. (Stop* only when the execution is stopped
# while the job runs.)
SYNC_FOLLOW_UP: Final[dict[str, tuple[str, str, str]]] = {
    # create action -> (describe operation, name parameter, managed rule)
    "createTrainingJob": (
        "DescribeTrainingJob",
        "TrainingJobName",
        "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    ),
    "createHyperParameterTuningJob": (
        "DescribeHyperParameterTuningJob",
        "HyperParameterTuningJobName",
        "StepFunctionsGetEventsForSageMakerTuningJobsRule",
    ),
    "createTransformJob": (
        "DescribeTransformJob",
        "TransformJobName",
        "StepFunctionsGetEventsForSageMakerTransformJobsRule",
    ),
}
_MANAGED_RULE_OPERATIONS: Final = ("PutTargets", "PutRule", "DescribeRule")
_ECR_IMAGE: Final = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[^/]+/(?P<repo>[^:@]+)"
)


@dataclass(frozen=True)
class ServiceCall:
    """One call a service makes (or a recorded client made) with a role: the API operation, its
    authorization requests and where the knowledge comes from."""

    role_arn: str
    service: str
    operation: str
    requests: tuple[AuthorizationRequest, ...]
    origin: str  # "recorded", "execution history" or a DOCS key


@dataclass(frozen=True)
class Account:
    region: str
    account: str
    partition: str = "aws"


@dataclass
class StepFunctionsFacts:
    """What the state machine's role needs to know about the stack: topic -> KMS key."""

    topic_keys: Mapping[str, str] = field(default_factory=dict)


def _call(
    role: str, prefix: str, operation: str, params: Mapping[str, Any], origin: str, at: Account
) -> ServiceCall:
    requests = requests_for_call(
        prefix, operation, params, region=at.region, account=at.account, partition=at.partition
    )
    return ServiceCall(role, prefix, operation, tuple(requests), origin)


def _pascal(action: str) -> str:
    return action[:1].upper() + action[1:]


def task_calls(
    role: str,
    resource_type: str,
    resource: str,
    params: Mapping[str, Any],
    at: Account,
    facts: StepFunctionsFacts,
) -> Iterator[ServiceCall]:
    """The calls one Task state makes: `resource_type`/`resource` as a TaskScheduled event names them
    (`sagemaker` / `createTrainingJob.sync`, `aws-sdk:sagemaker` / `describeEndpoint`)."""
    action, _, pattern = resource.partition(".")
    if resource_type.startswith("aws-sdk:"):
        sdk = resource_type.removeprefix("aws-sdk:")
        prefix = SDK_SERVICE_PREFIXES.get(sdk, sdk)
        yield _call(role, prefix, _pascal(action), params, "execution history", at)
        if sdk == "applicationautoscaling":
            yield from _autoscaling_calls(role, action, params, at)
        return
    if resource_type == "sagemaker":
        yield _call(role, "sagemaker", _pascal(action), params, "execution history", at)
    elif (resource_type, action) in OPTIMIZED_OPERATIONS:
        prefix, operation = OPTIMIZED_OPERATIONS[(resource_type, action)]
        yield _call(role, prefix, operation, params, "execution history", at)
    else:
        raise LookupError(f"no IAM mapping for the Step Functions integration {resource_type}:{resource}")
    if resource_type == "sagemaker" and pattern == "sync" and action in SYNC_FOLLOW_UP:
        describe, name_key, rule = SYNC_FOLLOW_UP[action]
        name = params[name_key]
        yield _call(role, "sagemaker", describe, {name_key: name}, "stepfunctions-sagemaker", at)
        job_type = re.sub(r"(?<!^)(?=[A-Z])", "-", describe.removeprefix("Describe")).lower()
        job_arn = f"arn:{at.partition}:sagemaker:{at.region}:{at.account}:{job_type}/{str(name).lower()}"
        yield _call(role, "sagemaker", "ListTags", {"ResourceArn": job_arn}, "stepfunctions-sagemaker", at)
        for operation in _MANAGED_RULE_OPERATIONS:
            yield _call(
                role, "events", operation, {"Name": rule, "Rule": rule}, "stepfunctions-sagemaker", at
            )
    if resource_type == "sns" and action == "publish":
        key = facts.topic_keys.get(str(params.get("TopicArn", "")))
        if key:  # SNS asks KMS for a data key with the publisher's permissions
            for operation in ("GenerateDataKey", "Decrypt"):
                yield _call(role, "kms", operation, {"KeyId": key}, "sns-sse", at)


def _autoscaling_calls(
    role: str, action: str, params: Mapping[str, Any], at: Account
) -> Iterator[ServiceCall]:
    """What Application Auto Scaling does with the caller's permissions for a SageMaker variant
    (DOCS["sagemaker-autoscaling"], DOCS["autoscaling-iam"])."""
    if params.get("ServiceNamespace") != "sagemaker":
        return
    resource_id = str(params.get("ResourceId", ""))  # endpoint/<name>/variant/<variant>
    parts = resource_id.split("/")
    if len(parts) != 4 or parts[0] != "endpoint":
        return
    endpoint = parts[1]
    if action == "registerScalableTarget":
        for operation in ("DescribeEndpoint", "UpdateEndpointWeightsAndCapacities"):
            yield _call(role, "sagemaker", operation, {"EndpointName": endpoint}, "sagemaker-autoscaling", at)
        path = f"aws-service-role/{AUTOSCALING_SLR_SERVICE}/{AUTOSCALING_SLR_NAME}"
        slr = f"arn:{at.partition}:iam::{at.account}:role/{path}"
        request = AuthorizationRequest.of(
            "iam:CreateServiceLinkedRole", slr, {"iam:AWSServiceName": AUTOSCALING_SLR_SERVICE}
        )
        yield ServiceCall(role, "iam", "CreateServiceLinkedRole", (request,), "autoscaling-iam")
    elif action == "putScalingPolicy" and params.get("PolicyType") == "TargetTrackingScaling":
        # the policy's alarms: TargetTracking-<resource id>-AlarmHigh-<uuid> and -AlarmLow-<uuid>
        alarms = [f"TargetTracking-{resource_id}-Alarm{kind}-*" for kind in ("High", "Low")]
        for operation in ("PutMetricAlarm", "DescribeAlarms"):
            yield _call(role, "cloudwatch", operation, {"AlarmNames": alarms}, "sagemaker-autoscaling", at)


def state_machine_tracing_calls(role: str, at: Account) -> Iterator[ServiceCall]:
    """An execution of a state machine with X-Ray tracing enabled sends its segments with the role."""
    for operation in ("PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets"):
        yield _call(role, "xray", operation, {}, "stepfunctions-xray", at)


def image_pull_calls(
    role: str, image: str, at: Account, origin: str = "sagemaker-roles"
) -> Iterator[ServiceCall]:
    """Pulling a container image from ECR with the execution role (the image's registry and region)."""
    yield _call(role, "ecr", "GetAuthorizationToken", {}, origin, at)
    match = _ECR_IMAGE.match(image)
    if match is None:
        return
    repository = {"repositoryName": match["repo"], "registryId": match["account"]}
    registry = Account(match["region"], at.account, at.partition)
    for operation in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage"):
        yield _call(role, "ecr", operation, repository, origin, registry)


def training_job_calls(role: str, job: Mapping[str, Any], at: Account) -> Iterator[ServiceCall]:
    """A training job's platform calls with its RoleArn (DescribeTrainingJob output): the image pull and
    the instance metrics (/aws/sagemaker/TrainingJobs). Its S3 and log calls are recorded."""
    yield from image_pull_calls(role, str(job.get("AlgorithmSpecification", {}).get("TrainingImage", "")), at)
    yield _call(
        role,
        "cloudwatch",
        "PutMetricData",
        {"Namespace": "/aws/sagemaker/TrainingJobs"},
        "sagemaker-cloudwatch",
        at,
    )


def endpoint_model_calls(role: str, endpoint_name: str, image: str, at: Account) -> Iterator[ServiceCall]:
    """An endpoint's instances with their model's ExecutionRoleArn: the serving image, the container log
    stream in /aws/sagemaker/Endpoints/<endpoint> and the instance metrics (/aws/sagemaker/Endpoints).
    The model data download is recorded."""
    yield from image_pull_calls(role, image, at)
    group = {"logGroupName": f"/aws/sagemaker/Endpoints/{endpoint_name}", "logStreamName": "AllTraffic/*"}
    for operation in ("CreateLogStream", "PutLogEvents"):
        yield _call(role, "logs", operation, group, "sagemaker-roles", at)
    yield _call(
        role,
        "cloudwatch",
        "PutMetricData",
        {"Namespace": "/aws/sagemaker/Endpoints"},
        "sagemaker-cloudwatch",
        at,
    )


def lambda_service_calls(role: str, log_group: str, tracing: bool, at: Account) -> Iterator[ServiceCall]:
    """A function's invocations: Lambda writes its log stream with the role, and X-Ray segments when
    tracing is active (the stream name is Lambda's: any stream of the group)."""
    stream = {"logGroupName": log_group, "logStreamName": "*"}
    for operation in ("CreateLogStream", "PutLogEvents"):
        yield _call(role, "logs", operation, stream, "lambda-logs", at)
    if tracing:
        for operation in ("PutTraceSegments", "PutTelemetryRecords"):
            yield _call(role, "xray", operation, {}, "lambda-xray", at)


def rule_target_calls(role: str, state_machine_arn: str, at: Account) -> Iterator[ServiceCall]:
    """An EventBridge rule starting its state machine target with the target's RoleArn."""
    yield _call(
        role, "states", "StartExecution", {"stateMachineArn": state_machine_arn}, "eventbridge-targets", at
    )
