"""Removing a dogbreed stack and what it made, on AWS or on the local cloud (`dogbreed teardown`).

1. The SageMaker endpoints, endpoint configs and models the pipeline created at run time:
   CloudFormation does not own them. They are found by the `dogbreed:stack` tag
   (`dogbreed.stack_tags`), an endpoint's auto scaling target is deregistered (which removes its
   policies) and the endpoint deleted and waited for, then the configs and models.
2. The stack's buckets are emptied: every object version and delete marker (a versioned bucket, a
   versioning-suspended one and an unversioned one alike) and unfinished multipart uploads. A bucket
   the stack retains (`DeletionPolicy: Retain`, prod) is left as it is unless asked.
3. The stack: on AWS, CloudFormation's DeleteStack (and wait); on the local cloud, each resource the
   local deploy created (buckets, tables, queues, state machines, alarms, EventBridge rules and their
   delivery queues). Retained buckets and tables are kept, or deleted after the stack when asked.

Everything goes through boto3 clients, so the same code runs against AWS and against the local
cloud's AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from dogbreed.stack_tags import STACK_TAG_KEY
from dogbreed.template_stack import TemplateStack

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
# What the local deploy creates, in the order the local teardown deletes it.
LOCAL_RESOURCE_TYPES = (
    "AWS::CloudWatch::Alarm",
    "AWS::Serverless::StateMachine",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
)
RETAINED_DATA_TYPES = ("AWS::S3::Bucket", "AWS::DynamoDB::Table")

Log = Callable[[str], None]


@dataclass
class SageMakerResources:
    endpoints: list[str] = field(default_factory=list)
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


@dataclass
class TeardownReport:
    stack: str
    sagemaker: SageMakerResources = field(default_factory=SageMakerResources)
    emptied: dict[str, int] = field(default_factory=dict)  # bucket -> versions and markers removed
    deleted: list[str] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)


# --- SageMaker: found by tag ---------------------------------------------------------------------


def _tagged(sagemaker: Any, stack_name: str, arn: str) -> bool:
    try:
        tags = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    except ClientError:
        return False
    return any(tag.get("Key") == STACK_TAG_KEY and tag.get("Value") == stack_name for tag in tags)


def tagged_sagemaker_resources(sagemaker: Any, stack_name: str) -> SageMakerResources:
    """The endpoints, endpoint configs and models tagged `dogbreed:stack=<stack_name>`."""
    found = SageMakerResources()
    listings = (
        ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn", found.endpoints),
        (
            "list_endpoint_configs",
            "EndpointConfigs",
            "EndpointConfigName",
            "EndpointConfigArn",
            found.endpoint_configs,
        ),
        ("list_models", "Models", "ModelName", "ModelArn", found.models),
    )
    for operation, key, name_key, arn_key, names in listings:
        for page in sagemaker.get_paginator(operation).paginate():
            names.extend(
                item[name_key] for item in page[key] if _tagged(sagemaker, stack_name, item[arn_key])
            )
    return found


def delete_sagemaker_resources(
    sagemaker: Any, autoscaling: Any, resources: SageMakerResources, *, log: Log, wait_delay: int = 15
) -> None:
    """Deregister each endpoint's auto scaling, delete the endpoints (waiting until they are gone: a
    config in use cannot be deleted), then the endpoint configs and models."""
    for endpoint in resources.endpoints:
        try:
            variants = sagemaker.describe_endpoint(EndpointName=endpoint).get("ProductionVariants", [])
        except ClientError:
            continue  # already gone
        resource_ids = [f"endpoint/{endpoint}/variant/{variant['VariantName']}" for variant in variants]
        registered = autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=resource_ids, ScalableDimension=SCALABLE_DIMENSION
        ).get("ScalableTargets", [])
        for target in registered:
            autoscaling.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=target["ResourceId"],
                ScalableDimension=SCALABLE_DIMENSION,
            )
            log(f"deregistered auto scaling of {target['ResourceId']}")
        sagemaker.delete_endpoint(EndpointName=endpoint)
        log(f"deleting endpoint {endpoint}")
    for endpoint in resources.endpoints:
        sagemaker.get_waiter("endpoint_deleted").wait(
            EndpointName=endpoint, WaiterConfig={"Delay": wait_delay, "MaxAttempts": 120}
        )
    for config in resources.endpoint_configs:
        sagemaker.delete_endpoint_config(EndpointConfigName=config)
        log(f"deleted endpoint config {config}")
    for model in resources.models:
        sagemaker.delete_model(ModelName=model)
        log(f"deleted model {model}")


# --- buckets ---------------------------------------------------------------------------------------


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker (an unversioned bucket lists its objects as
    version "null") and abort unfinished multipart uploads; returns how many versions and markers
    were removed."""
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                raise RuntimeError(f"cannot empty {bucket}: {response['Errors'][:3]}")
            removed += len(batch)
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return removed


def delete_table(dynamodb: Any, table: str) -> None:
    """Delete a table, lifting its deletion protection first (the caller asked for retained data)."""
    if dynamodb.describe_table(TableName=table)["Table"].get("DeletionProtectionEnabled"):
        dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
    dynamodb.delete_table(TableName=table)


def _retained(stack: TemplateStack, logical_id: str) -> bool:
    """Whether CloudFormation keeps the resource when the stack is deleted (its DeletionPolicy, the
    template's conditions evaluated with the stack's parameters)."""
    resource = stack.resources.get(logical_id, {})
    return resource.get("Type") in RETAINED_DATA_TYPES and stack.resolve(
        resource.get("DeletionPolicy", "Delete")
    ) in ("Retain", "RetainExceptOnCreate", "Snapshot")


# --- AWS -------------------------------------------------------------------------------------------


def deployed_stack(cloudformation: Any, stack_name: str) -> TemplateStack:
    """The deployed stack's processed template (the SAM transform applied) with its parameter values."""
    [described] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    body = cloudformation.get_template(StackName=stack_name, TemplateStage="Processed")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    parameters = {
        p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
        for p in described.get("Parameters", [])
    }
    return TemplateStack(template, parameters, stack_name)


def teardown_aws(
    session: Any, stack_name: str, *, delete_retained: bool = False, log: Log = print
) -> TeardownReport:
    """Tear a deployed stack down on AWS (`session`'s account and region)."""
    cloudformation = session.client("cloudformation")
    stack = deployed_stack(cloudformation, stack_name)
    report = TeardownReport(stack_name)
    report.sagemaker = tagged_sagemaker_resources(session.client("sagemaker"), stack_name)
    delete_sagemaker_resources(
        session.client("sagemaker"), session.client("application-autoscaling"), report.sagemaker, log=log
    )
    physical: dict[str, tuple[str, str]] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for item in page["StackResourceSummaries"]:
            physical[item["LogicalResourceId"]] = (item["ResourceType"], item.get("PhysicalResourceId", ""))
    s3 = session.client("s3")
    retained = [lid for lid in physical if _retained(stack, lid)]
    for logical_id, (kind, name) in physical.items():
        if kind == "AWS::S3::Bucket" and name and (logical_id not in retained or delete_retained):
            report.emptied[name] = empty_bucket(s3, name)
            log(f"emptied bucket {name} ({report.emptied[name]} versions and delete markers)")
    cloudformation.delete_stack(StackName=stack_name)
    log(f"deleting stack {stack_name}")
    cloudformation.get_waiter("stack_delete_complete").wait(StackName=stack_name)
    report.deleted.append(f"stack {stack_name}")
    for logical_id in retained:
        kind, name = physical[logical_id]
        if not delete_retained:
            report.retained.append(f"{kind} {name}")
        elif kind == "AWS::S3::Bucket":
            s3.delete_bucket(Bucket=name)
            report.deleted.append(f"bucket {name}")
        else:
            delete_table(session.client("dynamodb"), name)
            report.deleted.append(f"table {name}")
    return report


# --- the local cloud -------------------------------------------------------------------------------


def teardown_local(
    session: Any,
    endpoint_url: str | None,
    stack: TemplateStack,
    *,
    delete_retained: bool = False,
    log: Log = print,
) -> TeardownReport:
    """Tear the local cloud's stack down: what the local deploy created from `stack` (its template
    with the deployment's parameters), through the AWS APIs at `endpoint_url` (None: the session's
    own endpoints, e.g. AWS_ENDPOINT_URL)."""

    @functools.cache
    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    report = TeardownReport(stack.stack_name)
    report.sagemaker = tagged_sagemaker_resources(client("sagemaker"), stack.stack_name)
    delete_sagemaker_resources(
        client("sagemaker"), client("application-autoscaling"), report.sagemaker, log=log, wait_delay=1
    )
    _delete_local_rules(client("events"), client("sqs"), stack.stack_name, report, log)
    for kind in LOCAL_RESOURCE_TYPES:
        for logical_id, resource in stack.resources.items():
            if resource["Type"] != kind or (
                "Condition" in resource and not stack.condition(resource["Condition"])
            ):
                continue
            name = stack.physical_name(logical_id)
            if _retained(stack, logical_id) and not delete_retained:
                report.retained.append(f"{kind} {name}")
                continue
            try:
                _delete_local(client, kind, name, stack.ref(logical_id), report)
            except ClientError as error:
                log(f"{kind} {name}: {error.response.get('Error', {}).get('Code', 'error')} (already gone?)")
                continue
            report.deleted.append(f"{kind} {name}")
            log(f"deleted {kind} {name}")
    return report


def _delete_local(
    client: Callable[[str], Any], kind: str, name: str, ref: str, report: TeardownReport
) -> None:
    if kind == "AWS::S3::Bucket":
        report.emptied[name] = empty_bucket(client("s3"), name)
        client("s3").delete_bucket(Bucket=name)
    elif kind == "AWS::DynamoDB::Table":
        delete_table(client("dynamodb"), name)
    elif kind == "AWS::SQS::Queue":
        sqs = client("sqs")
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    elif kind == "AWS::Serverless::StateMachine":
        client("stepfunctions").delete_state_machine(stateMachineArn=ref)
    elif kind == "AWS::CloudWatch::Alarm":
        client("cloudwatch").delete_alarms(AlarmNames=[name])


def _delete_local_rules(events: Any, sqs: Any, stack_name: str, report: TeardownReport, log: Log) -> None:
    """The EventBridge rules the local deploy made for the stack's EventBridgeRule events (named after
    the stack), with their delivery queues (the rules' SQS targets)."""
    for page in events.get_paginator("list_rules").paginate(NamePrefix=f"{stack_name}-"):
        for rule in page["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
            if targets:
                events.remove_targets(Rule=rule["Name"], Ids=[target["Id"] for target in targets])
            events.delete_rule(Name=rule["Name"])
            report.deleted.append(f"AWS::Events::Rule {rule['Name']}")
            for target in targets:
                if target["Arn"].startswith("arn:aws:sqs:"):
                    queue = target["Arn"].rsplit(":", 1)[-1]
                    try:
                        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
                    except ClientError:
                        continue
                    report.deleted.append(f"delivery queue {queue}")
            log(f"deleted rule {rule['Name']}")
