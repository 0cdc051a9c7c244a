"""Every call the stack's principals made on a running local cloud, per role, as
`dogbreed.aws.iam.service_behaviour.ServiceCall`s:

- recorded: what the functions and the local SageMaker (with a job's or model's execution role)
  signed, read back by `wire` and mapped to IAM by `api_authorization`;
- the state machines' role: every TaskScheduled event of every execution (resource and parameters)
  through the Step Functions integration rules. moto's interpreter signs its own service calls with
  a fixed key ("ak") and answers the SageMaker integrations in-process, so the execution history, the
  same record AWS keeps, is the one complete source;
- what AWS services do with a role on their own (`service_behaviour`), from what ran: the SageMaker
  training jobs and the endpoint's models (DescribeTrainingJob / DescribeModel), the functions that
  were invoked (their AWS/Lambda Invocations metric) and the executions an EventBridge rule started.

    report = local_iam_report(state, recorded)        # dogbreed.aws.iam.report.IamReport
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from dogbreed.aws.iam.api_authorization import UnmappedOperation, requests_for_call
from dogbreed.aws.iam.report import IamReport, build_report, read_justifications
from dogbreed.aws.iam.service_behaviour import (
    Account,
    ServiceCall,
    StepFunctionsFacts,
    endpoint_model_calls,
    lambda_service_calls,
    rule_target_calls,
    state_machine_tracing_calls,
    task_calls,
    training_job_calls,
)
from dogbreed.aws.iam.stack_principals import StackPolicies, stack_policies
from dogbreed.local.cloud.state import CloudState
from dogbreed.local.iam.identity import access_key_id_for
from dogbreed.local.iam.recorder import RecordedCall
from dogbreed.local.iam.wire import UnreadableCall, read_call
from dogbreed.template_stack import ACCOUNT_ID, REGION

HERE = Account(REGION, ACCOUNT_ID)
UNJUDGED = "unjudged"  # origin of a call that could not be mapped to IAM (the report fails on it)


def recorded_calls(state: CloudState) -> list[RecordedCall]:
    """The calls the running cloud recorded (its control API)."""
    response = httpx.get(f"{state.control_url}/iam/calls", timeout=60)
    response.raise_for_status()
    body = response.json()
    if body.get("dropped"):
        raise RuntimeError(f"the cloud dropped {body['dropped']} recorded calls (its recording cap)")
    return [RecordedCall.from_json(item) for item in body["calls"]]


def from_recording(stack: StackPolicies, recorded: Iterable[RecordedCall]) -> Iterator[ServiceCall]:
    roles = {access_key_id_for(arn): arn for arn in stack.principals}
    for call in recorded:
        role = roles.get(call.access_key_id, f"unknown role (access key {call.access_key_id})")
        try:
            api = read_call(call)
            requests = requests_for_call(
                api.iam_prefix, api.operation, api.params, region=call.region, account=ACCOUNT_ID
            )
        except (UnreadableCall, UnmappedOperation, ValueError) as error:
            yield ServiceCall(role, call.service, f"{call.method} {call.path} ({error})", (), UNJUDGED)
            continue
        yield ServiceCall(role, api.iam_prefix, api.operation, tuple(requests), "recorded")


def _pages(method: Any, key: str, **request: Any) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = method(**request, **({"nextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return


def _is_eventbridge_event(document: Any) -> bool:
    return isinstance(document, dict) and "detail-type" in document and "source" in document


def from_state_machines(stack: StackPolicies, sfn: Any) -> Iterator[ServiceCall]:
    resolver = stack.stack
    facts = StepFunctionsFacts(topic_keys=_topic_keys(stack))
    rules = stack.resources_of_type("AWS::Events::Rule")
    for logical_id, resource in stack.resources_of_type("AWS::StepFunctions::StateMachine").items():
        arn = resolver.ref(logical_id)
        properties = resource.get("Properties", {})
        role = resolver.resolve(properties["RoleArn"])
        tracing = bool(resolver.resolve(properties.get("TracingConfiguration", {})).get("Enabled"))
        starters = [
            str(resolver.resolve(target["RoleArn"]))
            for rule in rules.values()
            for target in rule.get("Properties", {}).get("Targets", [])
            if "RoleArn" in target and resolver.resolve(target["Arn"]) == arn
        ]
        for execution in _pages(sfn.list_executions, "executions", stateMachineArn=arn):
            history = list(
                _pages(sfn.get_execution_history, "events", executionArn=execution["executionArn"])
            )
            for event in history:
                if event["type"] == "ExecutionStarted" and starters:
                    started = json.loads(event["executionStartedEventDetails"].get("input") or "null")
                    if _is_eventbridge_event(started):
                        for starter in starters:
                            yield from rule_target_calls(starter, arn, HERE)
                if event["type"] != "TaskScheduled":
                    continue
                details = event["taskScheduledEventDetails"]
                parameters = json.loads(details.get("parameters") or "{}")
                try:
                    yield from task_calls(
                        role, details["resourceType"], details["resource"], parameters, HERE, facts
                    )
                except (LookupError, UnmappedOperation) as error:
                    yield ServiceCall(role, details["resourceType"], str(error), (), UNJUDGED)
            if tracing:
                yield from state_machine_tracing_calls(role, HERE)


def _topic_keys(stack: StackPolicies) -> dict[str, str]:
    keys = {}
    for logical_id, resource in stack.resources_of_type("AWS::SNS::Topic").items():
        key = resource.get("Properties", {}).get("KmsMasterKeyId")
        if isinstance(key, dict) and "Ref" in key:
            keys[stack.stack.ref(logical_id)] = stack.stack.get_att(key["Ref"], "Arn")
    return keys


def from_sagemaker(sagemaker: Any) -> Iterator[ServiceCall]:
    token: str | None = None
    while True:
        page = sagemaker.list_training_jobs(MaxResults=100, **({"NextToken": token} if token else {}))
        for summary in page["TrainingJobSummaries"]:
            job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            yield from training_job_calls(job["RoleArn"], job, HERE)
        token = page.get("NextToken")
        if not token:
            break
    for summary in sagemaker.list_endpoints(MaxResults=100)["Endpoints"]:
        endpoint = sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        for variant in config["ProductionVariants"]:
            model = sagemaker.describe_model(ModelName=variant["ModelName"])
            container = model.get("PrimaryContainer", {})
            image = container.get("Image", "")
            if not image and container.get("ModelPackageName"):
                package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
                image = package["InferenceSpecification"]["Containers"][0]["Image"]
            yield from endpoint_model_calls(model["ExecutionRoleArn"], endpoint["EndpointName"], image, HERE)


def from_lambda(stack: StackPolicies, cloudwatch: Any) -> Iterator[ServiceCall]:
    resolver = stack.stack
    now = datetime.now(UTC)
    for logical_id, resource in stack.resources_of_type("AWS::Lambda::Function").items():
        name = resolver.ref(logical_id)
        datapoints = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="Invocations",
            Dimensions=[{"Name": "FunctionName", "Value": name}],
            StartTime=now - timedelta(days=1),
            EndTime=now + timedelta(minutes=5),
            Period=86400,
            Statistics=["Sum"],
        )["Datapoints"]
        if not sum(point["Sum"] for point in datapoints):
            continue
        properties = resolver.resolve(resource.get("Properties", {}))
        group = properties.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{name}"
        tracing = properties.get("TracingConfig", {}).get("Mode") == "Active"
        yield from lambda_service_calls(str(resolver.resolve(properties["Role"])), group, tracing, HERE)


def local_iam_report(state: CloudState, recorded: list[RecordedCall] | None = None) -> IamReport:
    """The IAM report of everything the running cloud's stack did so far."""
    stack = stack_policies(state.parameters, state.stack_name)
    calls: list[ServiceCall] = [
        *from_recording(stack, recorded if recorded is not None else recorded_calls(state)),
        *from_state_machines(stack, state.client("stepfunctions")),
        *from_sagemaker(state.client("sagemaker")),
        *from_lambda(stack, state.client("cloudwatch")),
    ]
    return build_report(stack.principals, calls, read_justifications())
