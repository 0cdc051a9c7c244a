"""Create the local stack's resources from template.yaml through ordinary boto3 calls (moto in-process
or moto server): buckets, tables, queues, topics, model package groups, alarms and state machines.

    stack = TemplateStack.load(parameters={"EndpointPollSeconds": "0"})   # dogbreed.template_stack
    created = create_resources(stack, session)          # boto3 Session pointed at moto
    created.physical_names["RunsTable"], created.state_machine_arns["TrainingPipeline"]

Why not moto's CloudFormation: it does not run the SAM transform (samtranslator is not part of
moto; it lives in .venv-sam), and with the template translated by samtranslator first, moto 5.2.5's
CloudFormation still fails on the SAM-generated AWS::ApiGateway::RestApi (it requires `Name`; SAM
emits an OpenAPI `Body`). So the resources are created here, from the same template; only the
types listed in `create_resources` are created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dogbreed.template_stack import ACCOUNT_ID, REGION, TemplateStack


@dataclass
class CreatedStack:
    physical_names: dict[str, str] = field(default_factory=dict)
    state_machine_arns: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)


def create_resources(
    stack: TemplateStack,
    session: Any,
    *,
    only: set[str] | None = None,
    bucket_policies: bool = False,
    sagemaker: Any | None = None,
) -> CreatedStack:
    """Create buckets (encryption, public access block, EventBridge notifications), tables
    (keys, GSIs, TTL), queues, topics, model package groups, state machines and alarms (put again
    when they exist: an update). `only` limits it to some logical ids; `sagemaker` is the SageMaker
    client or backend (default: the session's client).

    Bucket policies are left out unless asked for: they deny non-TLS requests, and moto
    evaluates aws:SecureTransport as false for plain-HTTP local calls."""
    created = CreatedStack()
    for logical_id, resource in stack.resources.items():
        if only is not None and logical_id not in only:
            continue
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        kind = resource["Type"]
        properties = stack.resolve(resource.get("Properties", {}))
        name = stack.physical_name(logical_id)
        if kind == "AWS::S3::Bucket":
            _create_bucket(session.client("s3", region_name=REGION), name, properties)
        elif kind == "AWS::DynamoDB::Table":
            _create_table(session.client("dynamodb", region_name=REGION), name, properties)
        elif kind == "AWS::SQS::Queue":
            url = session.client("sqs", region_name=REGION).create_queue(QueueName=name)["QueueUrl"]
            created.queue_urls[logical_id] = url
        elif kind == "AWS::SNS::Topic":
            arn = session.client("sns", region_name=REGION).create_topic(Name=name)["TopicArn"]
            created.physical_names[logical_id] = arn
            continue
        elif kind == "AWS::SageMaker::ModelPackageGroup":
            name = properties["ModelPackageGroupName"]
            (sagemaker or session.client("sagemaker", region_name=REGION)).create_model_package_group(
                ModelPackageGroupName=name,
                ModelPackageGroupDescription=properties.get("ModelPackageGroupDescription", ""),
                Tags=properties.get("Tags", []),
            )
        elif kind == "AWS::CloudWatch::Alarm":
            _put_alarm(session.client("cloudwatch", region_name=REGION), name, properties)
        elif kind == "AWS::Serverless::StateMachine":
            sfn = session.client("stepfunctions", region_name=REGION)
            response = sfn.create_state_machine(
                name=name,
                definition=stack.state_machine_definition(logical_id),
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-role",
                type=properties.get("Type", "STANDARD"),
            )
            created.state_machine_arns[logical_id] = response["stateMachineArn"]
        else:
            continue
        created.physical_names[logical_id] = name
    for logical_id, resource in stack.resources.items():
        if not bucket_policies or resource["Type"] != "AWS::S3::BucketPolicy":
            continue
        if only is None or logical_id in only:
            properties = stack.resolve(resource["Properties"])
            if properties["Bucket"] in created.physical_names.values():
                session.client("s3", region_name=REGION).put_bucket_policy(
                    Bucket=properties["Bucket"], Policy=json.dumps(properties["PolicyDocument"])
                )
    return created


def _create_bucket(s3: Any, name: str, properties: dict[str, Any]) -> None:
    s3.create_bucket(Bucket=name)
    if "BucketEncryption" in properties:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [  # CloudFormation's ServerSideEncryptionByDefault is the API's Apply...
                    {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                    for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
            },
        )
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )
    notification = properties.get("NotificationConfiguration", {}).get("EventBridgeConfiguration")
    if notification and notification.get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )


def _put_alarm(cloudwatch: Any, name: str, properties: dict[str, Any]) -> None:
    """PutMetricAlarm (create or update) with the alarm's properties: AWS::CloudWatch::Alarm's
    property names are PutMetricAlarm's parameter names; the template's AlarmName, if any, wins."""
    accepted = cloudwatch.meta.service_model.operation_model("PutMetricAlarm").input_shape.members
    request = {k: _as_shape(accepted[k], value) for k, value in properties.items() if k in accepted}
    request.setdefault("AlarmName", name)
    cloudwatch.put_metric_alarm(**request)


def _create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> None:
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    dynamodb.create_table(**request)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )


def _as_shape(shape: Any, value: Any) -> Any:
    """A resolved parameter (always a string) as the API member's scalar type, as CloudFormation
    converts it for the resource: `Threshold: !Ref X` is a number to PutMetricAlarm."""
    if isinstance(value, str):
        if shape.type_name == "double":
            return float(value)
        if shape.type_name in ("integer", "long"):
            return int(value)
        if shape.type_name == "boolean":
            return value.lower() == "true"
    return value
