"""Deploy template.yaml into the local cloud (moto server), re-runnable: what exists is updated,
what is missing is created, so a changed template changes the local cloud.

Buckets, tables, queues, alarms and the state machine (DefinitionSubstitutions resolved) are created by
`dogbreed.local.template_resources.TemplateStack`, the project's one template resolver. This module
adds what that resolver leaves out and the local cloud needs, read from the same template:

- the EventBridge rules of every `EventBridgeRule` event (SAM) and `AWS::Events::Rule`, created in
  moto with the template's pattern. moto matches the patterns; it cannot deliver to Step Functions
  or Lambda targets, so each rule gets a local delivery queue as its moto target and a `Route`
  (target, RetryPolicy, DeadLetterConfig) for the event router;
- the functions, as the local Lambda runtime's `FunctionSpec`s: template environment (plus the
  documented local additions), timeout, memory, reserved concurrency, EventInvokeConfig, role;
- the stack outputs, resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dogbreed import TEMPLATE_PATH
from dogbreed.local.lambda_runtime.function import EventInvokeConfig, FunctionSpec
from dogbreed.local.template_resources import create_resources
from dogbreed.template_stack import ACCOUNT_ID, TemplateError, TemplateStack

STACK_NAME = "dogbreed-local"

# Tiny settings for a 2-core laptop (template parameter overrides for the local stack only; the
# template's defaults stay the AWS ones). `dogbreed local deploy --parameter-overrides` adds more.
LOCAL_PARAMETERS: dict[str, str] = {
    "Backbone": "resnet18",
    "ImageSize": "64",
    "UseSpotTraining": "false",
    "FinalTrainingInstanceCount": "2",
    "MaxTuningJobs": "2",
    "MaxParallelTuningJobs": "1",
    "TuningEpochsMin": "3",
    "TuningEpochsMax": "4",
    "TuningBatchSizes": "16",
    "TuningLearningRateMin": "0.001",
    "TuningLearningRateMax": "0.0015",
    "AccuracyThreshold": "0.3",
    # The local models know 3-4 breeds: an unsure answer is one near uniform (1/3-1/4), where 0.5 is
    # the bar for 133 breeds (LowConfidenceAnswersAlarm, a rollback alarm).
    "LowConfidenceProbability": "0.35",
    "LabelSmoothing": "0.0",
    "MaxTrainingRuntimeSeconds": "900",
    "EndpointPollSeconds": "1",
    "EndpointPollMaxIterations": "300",
    # The local SageMaker really bakes an endpoint update (10 minutes by default): a short bake keeps
    # the demo's second run quick. The rollout tests and docs/pipeline.md's timeline set their own.
    "RolloutBakeSeconds": "10",
    "EndpointMinInstances": "1",
    "EndpointMaxInstances": "2",
    "ScaleOutCooldownSeconds": "30",
    "ScaleInCooldownSeconds": "60",
    # The S3-drop function's reserved concurrency caps its load on the one local endpoint instance
    # (8 concurrent requests), so a burst of drops queues instead of throttling the API's callers.
    "S3ReservedConcurrency": "4",
}

# The function environment the local cloud adds (documented in docs/local-cloud.md): no X-Ray daemon
# runs here. (Loopback image URLs are allowed by a worker hook, not by the environment.)
LOCAL_FUNCTION_ENVIRONMENT: dict[str, str] = {"POWERTOOLS_TRACE_DISABLED": "true"}

_CREATED_TYPES = (
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Serverless::StateMachine",
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Topic",
    "AWS::SageMaker::ModelPackageGroup",
)
_RULE_OWNERS = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")


@dataclass(frozen=True)
class Route:
    """One EventBridge rule target the local event router delivers to."""

    rule_name: str
    delivery_queue_url: str
    target_kind: str  # "states" | "lambda"
    target: str  # state machine ARN | function name
    max_retries: int  # RetryPolicy.MaximumRetryAttempts (delivery) for state machines
    max_event_age_seconds: int
    dead_letter_queue_url: str | None


@dataclass
class Deployment:
    stack_name: str
    parameters: dict[str, str]
    physical_names: dict[str, str] = field(default_factory=dict)
    state_machine_arns: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # logical id -> function
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def function(self, logical_id: str) -> FunctionSpec:
        return self.functions[logical_id]


def load_stack(
    parameters: dict[str, str] | None = None, stack_name: str = STACK_NAME, path: Path = TEMPLATE_PATH
) -> TemplateStack:
    return TemplateStack.load(
        parameters={**LOCAL_PARAMETERS, **(parameters or {})}, stack_name=stack_name, path=path
    )


def _queue_name_from_arn(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _exists(session: Any, kind: str, name: str, arn: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        if kind == "AWS::S3::Bucket":
            session.client("s3").head_bucket(Bucket=name)
        elif kind == "AWS::DynamoDB::Table":
            session.client("dynamodb").describe_table(TableName=name)
        elif kind == "AWS::SQS::Queue":
            session.client("sqs").get_queue_url(QueueName=name)
        elif kind == "AWS::CloudWatch::Alarm":
            return bool(session.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"])
        elif kind == "AWS::SNS::Topic":
            session.client("sns").get_topic_attributes(TopicArn=arn)
        elif kind == "AWS::SageMaker::ModelPackageGroup":
            session.client("sagemaker").describe_model_package_group(ModelPackageGroupName=name)
        else:
            session.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    except ClientError:
        return False
    return True


def deploy(session: Any, stack: TemplateStack) -> Deployment:
    """Create or update the stack's resources in the moto server `session` points at. Parameters that
    break one of the template's Rules are refused before anything changes, as CloudFormation does."""
    broken = stack.broken_rules()
    if broken:
        raise TemplateError("the template's Rules refuse these parameters: " + "; ".join(broken))
    deployment = Deployment(stack_name=stack.stack_name, parameters=dict(stack.parameters))
    missing: set[str] = set()
    for logical_id, resource in stack.resources.items():
        kind = resource["Type"]
        if kind not in _CREATED_TYPES:
            continue
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        name = stack.physical_name(logical_id)
        if kind == "AWS::SageMaker::ModelPackageGroup":
            name = str(stack.resolve(resource["Properties"]["ModelPackageGroupName"]))
        deployment.physical_names[logical_id] = name
        arn = stack.ref(logical_id) if kind in ("AWS::Serverless::StateMachine", "AWS::SNS::Topic") else ""
        if not _exists(session, kind, name, arn):
            missing.add(logical_id)
        elif kind == "AWS::Serverless::StateMachine":
            session.client("stepfunctions").update_state_machine(
                stateMachineArn=arn, definition=stack.state_machine_definition(logical_id)
            )
            deployment.state_machine_arns[logical_id] = arn
            deployment.updated.append(logical_id)
        elif kind == "AWS::CloudWatch::Alarm":  # PutMetricAlarm replaces the alarm's configuration
            create_resources(stack, session, only={logical_id})
            deployment.updated.append(logical_id)
    if missing:
        created = create_resources(stack, session, only=missing)
        deployment.state_machine_arns.update(created.state_machine_arns)
        deployment.created.extend(sorted(missing))
    deployment.functions = {
        spec["logical_id"]: function_spec(stack, spec, LOCAL_FUNCTION_ENVIRONMENT)
        for spec in stack.lambda_functions()
    }
    _deploy_rules(session, stack, deployment)
    deployment.outputs = _outputs(stack)
    return deployment


def function_spec(
    stack: TemplateStack, spec: dict[str, Any], local_environment: dict[str, str]
) -> FunctionSpec:
    """One template function (`TemplateStack.lambda_functions()` entry) as the runtime runs it."""
    logical_id = spec["logical_id"]
    properties = stack.resources[logical_id]["Properties"]
    chosen = stack.resolve(
        {
            key: value
            for key, value in properties.items()
            if key in ("ReservedConcurrentExecutions", "EventInvokeConfig", "Role")
        }
    )
    invoke_config = chosen.get("EventInvokeConfig", {})
    destinations = invoke_config.get("DestinationConfig", {})
    # SAM names the execution role it creates <function logical id>Role.
    role = chosen.get("Role") or f"arn:aws:iam::{ACCOUNT_ID}:role/{stack.stack_name}-{logical_id}Role"
    reserved = chosen.get("ReservedConcurrentExecutions")
    return FunctionSpec(
        name=spec["name"],
        code_dir=spec["code_dir"],
        handler=spec["handler"],
        layer_dirs=tuple(spec["layer_dirs"]),
        environment={**spec["environment"], **local_environment},
        timeout_seconds=spec["timeout_seconds"],
        memory_mb=spec["memory_mb"],
        runtime=spec["runtime"],
        logical_id=logical_id,
        role_arn=str(role),
        arn=spec["arn"],
        reserved_concurrency=None if reserved is None else int(reserved),
        event_invoke_config=EventInvokeConfig(
            maximum_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
            maximum_event_age_seconds=int(invoke_config.get("MaximumEventAgeInSeconds", 21600)),
            on_failure=destinations.get("OnFailure", {}).get("Destination"),
            on_success=destinations.get("OnSuccess", {}).get("Destination"),
        ),
    )


def _rule_specs(stack: TemplateStack) -> list[tuple[str, str, dict[str, Any]]]:
    """(rule name, owner logical id, resolved event Properties)."""
    specs = []
    for logical_id, resource in stack.resources.items():
        if resource["Type"] in _RULE_OWNERS:
            for event_id, event in resource.get("Properties", {}).get("Events", {}).items():
                if event.get("Type") != "EventBridgeRule":
                    continue
                properties = stack.resolve(event.get("Properties", {}))
                specs.append((f"{stack.stack_name}-{logical_id}{event_id}"[:64], logical_id, properties))
        elif resource["Type"] == "AWS::Events::Rule":
            raise TemplateError(f"{logical_id}: AWS::Events::Rule targets are not routed locally yet")
    return specs


def _deploy_rules(session: Any, stack: TemplateStack, deployment: Deployment) -> None:
    events = session.client("events")
    sqs = session.client("sqs")
    for rule_name, owner_id, properties in _rule_specs(stack):
        events.put_rule(Name=rule_name, EventPattern=json.dumps(properties["Pattern"]), State="ENABLED")
        queue_name = f"{rule_name}-delivery"[:80]
        queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_targets(Rule=rule_name, Targets=[{"Id": "local-delivery", "Arn": queue_arn}])
        retry = properties.get("RetryPolicy", {})
        dlq_arn = properties.get("DeadLetterConfig", {}).get("Arn")
        dlq_url = sqs.get_queue_url(QueueName=_queue_name_from_arn(dlq_arn))["QueueUrl"] if dlq_arn else None
        kind = stack.resources[owner_id]["Type"]
        deployment.routes.append(
            Route(
                rule_name=rule_name,
                delivery_queue_url=queue_url,
                target_kind="states" if kind == "AWS::Serverless::StateMachine" else "lambda",
                target=stack.ref(owner_id)
                if kind == "AWS::Serverless::StateMachine"
                else stack.physical_name(owner_id),
                max_retries=int(retry.get("MaximumRetryAttempts", 185)),
                max_event_age_seconds=int(retry.get("MaximumEventAgeInSeconds", 86400)),
                dead_letter_queue_url=dlq_url,
            )
        )


def _outputs(stack: TemplateStack) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for name, output in stack.template.get("Outputs", {}).items():
        try:
            outputs[name] = str(stack.resolve(output["Value"]))
        except (TemplateError, KeyError):
            continue
    return outputs
