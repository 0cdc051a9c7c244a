"""Deploy template.yaml into the local cloud (moto server), re-runnable: what exists is updated,
what is missing is created, so a changed template changes the local cloud.

Buckets, tables, queues and the state machine (DefinitionSubstitutions resolved) are created by
`dogbreed.local.template_resources.TemplateStack`, the project's one template resolver. This module
adds what that resolver leaves out and the local cloud needs, read from the same template:

- the EventBridge rules of every `EventBridgeRule` event (SAM) and `AWS::Events::Rule`, created in
  moto with the template's pattern. moto matches the patterns; it cannot deliver to Step Functions
  or Lambda targets, so each rule gets a local delivery queue as its moto target and a `Route`
  (target, RetryPolicy, DeadLetterConfig, the function's EventInvokeConfig) for the event router;
- the functions, as `moto_shim.LambdaFunction`s with their template environment (plus the
  documented local overrides) for in-process execution;
- the stack outputs, resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dogbreed import TEMPLATE_PATH
from dogbreed.local import moto_shim
from dogbreed.local.template_resources import TemplateError, TemplateStack

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
    "LabelSmoothing": "0.0",
    "MaxTrainingRuntimeSeconds": "900",
    "EndpointPollSeconds": "1",
    "EndpointPollMaxIterations": "300",
    "EndpointMinInstances": "1",
    "EndpointMaxInstances": "2",
    "ScaleOutCooldownSeconds": "30",
    "ScaleInCooldownSeconds": "60",
    # The S3-drop function's reserved concurrency caps its load on the one local endpoint instance
    # (8 concurrent requests), so a burst of drops queues instead of throttling the API's callers.
    "S3ReservedConcurrency": "4",
}

# Function environment overrides that only exist in the local cloud (documented in
# docs/local-cloud.md): no X-Ray daemon runs here, and, unless the cloud was started with
# --no-loopback-urls, URL inputs may point at loopback servers (http://127.0.0.1:...) so the JSON
# {"url": ...} path can be exercised without the internet.
LOCAL_FUNCTION_ENVIRONMENT: dict[str, str] = {"POWERTOOLS_TRACE_DISABLED": "true"}
LOOPBACK_URLS_ENVIRONMENT: dict[str, str] = {"LOCAL_CLOUD_ALLOW_LOOPBACK_URLS": "true"}

_CREATED_TYPES = (
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Serverless::StateMachine",
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
    async_retries: int = 2  # Lambda's asynchronous invocation retries (EventInvokeConfig)
    on_failure_queue_url: str | None = None


@dataclass
class Deployment:
    stack_name: str
    parameters: dict[str, str]
    physical_names: dict[str, str] = field(default_factory=dict)
    state_machine_arns: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    functions: dict[str, moto_shim.LambdaFunction] = field(default_factory=dict)  # logical id -> fn
    # Function name -> ReservedConcurrentExecutions, for the functions whose template sets it.
    reserved_concurrency: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def function(self, logical_id: str) -> moto_shim.LambdaFunction:
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
        else:
            session.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    except ClientError:
        return False
    return True


def deploy(session: Any, stack: TemplateStack, *, loopback_urls: bool = True) -> Deployment:
    """Create or update the stack's resources in the moto server `session` points at.
    `loopback_urls=False` gives the functions the production URL policy (public https only)."""
    local_environment = {**LOCAL_FUNCTION_ENVIRONMENT, **(LOOPBACK_URLS_ENVIRONMENT if loopback_urls else {})}
    deployment = Deployment(stack_name=stack.stack_name, parameters=dict(stack.parameters))
    missing: set[str] = set()
    for logical_id, resource in stack.resources.items():
        kind = resource["Type"]
        if kind not in _CREATED_TYPES:
            continue
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        name = stack.physical_name(logical_id)
        deployment.physical_names[logical_id] = name
        arn = stack.ref(logical_id) if kind == "AWS::Serverless::StateMachine" else ""
        if not _exists(session, kind, name, arn):
            missing.add(logical_id)
        elif kind == "AWS::Serverless::StateMachine":
            session.client("stepfunctions").update_state_machine(
                stateMachineArn=arn, definition=stack.state_machine_definition(logical_id)
            )
            deployment.state_machine_arns[logical_id] = arn
            deployment.updated.append(logical_id)
    if missing:
        created = stack.deploy(session, only=missing)
        deployment.state_machine_arns.update(created.state_machine_arns)
        deployment.created.extend(sorted(missing))
    _register_functions(stack, deployment, local_environment)
    _deploy_rules(session, stack, deployment)
    deployment.outputs = _outputs(stack)
    return deployment


def _register_functions(
    stack: TemplateStack, deployment: Deployment, local_environment: dict[str, str]
) -> None:
    for spec in stack.lambda_functions():
        function = moto_shim.LambdaFunction(
            name=spec["name"],
            code_dir=spec["code_dir"],
            handler=spec["handler"],
            environment={**spec["environment"], **local_environment},
            timeout_seconds=spec["timeout_seconds"],
            arn=spec["arn"],
        )
        deployment.functions[spec["logical_id"]] = function
        moto_shim.register_lambda(function)
        properties = stack.resources[spec["logical_id"]]["Properties"]
        reserved = stack.resolve(
            {key: value for key, value in properties.items() if key == "ReservedConcurrentExecutions"}
        ).get("ReservedConcurrentExecutions")
        if reserved is not None:
            deployment.reserved_concurrency[spec["name"]] = int(reserved)


def _rule_specs(stack: TemplateStack) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(rule name, owner logical id, resolved event Properties, owner resolved Properties)."""
    specs = []
    for logical_id, resource in stack.resources.items():
        if resource["Type"] in _RULE_OWNERS:
            for event_id, event in resource.get("Properties", {}).get("Events", {}).items():
                if event.get("Type") != "EventBridgeRule":
                    continue
                properties = stack.resolve(event.get("Properties", {}))
                owner = stack.resolve(
                    {
                        key: value
                        for key, value in resource["Properties"].items()
                        if key == "EventInvokeConfig"
                    }
                )
                specs.append(
                    (f"{stack.stack_name}-{logical_id}{event_id}"[:64], logical_id, properties, owner)
                )
        elif resource["Type"] == "AWS::Events::Rule":
            raise TemplateError(f"{logical_id}: AWS::Events::Rule targets are not routed locally yet")
    return specs


def _deploy_rules(session: Any, stack: TemplateStack, deployment: Deployment) -> None:
    events = session.client("events")
    sqs = session.client("sqs")
    for rule_name, owner_id, properties, owner in _rule_specs(stack):
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
        invoke_config = owner.get("EventInvokeConfig", {})
        on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
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
                async_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
                on_failure_queue_url=sqs.get_queue_url(QueueName=_queue_name_from_arn(on_failure))["QueueUrl"]
                if on_failure
                else None,
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
