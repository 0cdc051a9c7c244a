"""Load `template.yaml` with its CloudFormation short-form tags (`!Ref`, `!Sub`, `!GetAtt`, ...).

Tags become their long form (`{"Ref": "X"}`, `{"Fn::Sub": "..."}`, `{"Fn::GetAtt": ["X", "Arn"]}`),
read by the operator library's loader (`dogbreed.template_stack`, cfn-lint's decoder), so tests can
walk the template as plain dicts and lists:

    from tests.support.templates import load_template
    resources = load_template()["Resources"]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dogbreed import TEMPLATE_PATH, template_stack


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The parsed template (default: the repository's template.yaml), by the operator library's loader."""
    return template_stack.load_template(Path(path))


# --- IAM statements of the template ---------------------------------------------------------------

NO_VALUE = {"Ref": "AWS::NoValue"}
IDENTITY_TYPES = (
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Serverless::Function",
    "AWS::Serverless::StateMachine",
)
RESOURCE_POLICIES = {  # resource type -> (policy document property, the property naming its targets)
    "AWS::S3::BucketPolicy": ("PolicyDocument", "Bucket"),
    "AWS::SQS::QueuePolicy": ("PolicyDocument", "Queues"),
    "AWS::SNS::TopicPolicy": ("PolicyDocument", "Topics"),
    "AWS::KMS::Key": ("KeyPolicy", None),
}
Resources = dict[str, dict[str, Any]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statement: dict[str, Any]) -> list[str]:
    return [str(action) for action in as_list(statement.get("Action", []))]


def branches(item: Any) -> Iterator[Any]:
    """An `!If`'s possible values (without AWS::NoValue), or the item itself."""
    if isinstance(item, dict) and set(item) == {"Fn::If"}:
        for branch in item["Fn::If"][1:]:
            if branch != NO_VALUE:
                yield from branches(branch)
    else:
        yield item


def _policy_documents(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    properties = resource.get("Properties", {})
    if "PolicyDocument" in properties and resource["Type"] in IDENTITY_TYPES:
        yield properties["PolicyDocument"]
    for item in properties.get("Policies", []) or []:
        for policy in branches(item):
            if isinstance(policy, dict) and "PolicyDocument" in policy:
                yield policy["PolicyDocument"]
            elif isinstance(policy, dict) and "Statement" in policy:
                yield policy


def identity_statements(resources: Resources) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, statement) for every statement an identity of the stack is granted: inline role
    policies and SAM `Policies` statements, both branches of each `!If`."""
    return [
        (logical_id, statement)
        for logical_id, resource in sorted(resources.items())
        if resource["Type"] in IDENTITY_TYPES
        for document in _policy_documents(resource)
        for item in document["Statement"]
        for statement in branches(item)
    ]


def resource_policy_statements(resources: Resources) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, statement) for every statement of a bucket, queue, topic or key policy."""
    return [
        (logical_id, statement)
        for logical_id, resource in sorted(resources.items())
        if resource["Type"] in RESOURCE_POLICIES
        for item in resource["Properties"][RESOURCE_POLICIES[resource["Type"]][0]]["Statement"]
        for statement in branches(item)
    ]
