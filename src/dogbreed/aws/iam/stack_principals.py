"""The stack's principals (its IAM roles) and their identity policies, as CloudFormation will get them:
template.yaml through the real SAM transform (`dogbreed.aws.sam_transform`: SAM expands policy
templates such as LambdaInvokePolicy, adds the roles of functions, state machines and EventBridge
rules, and attaches managed policies), with every intrinsic function resolved for one stack (name and
parameters) by the project's template resolver, and the attached managed policies' documents
(`managed_policies`).

    principals = stack_principals(parameters, "dogbreed-local")
    principals["arn:aws:iam::123456789012:role/dogbreed-local-TrainingPipelineRole"].policies

Resource policies (bucket, queue, topic and key policies) are not part of a principal here: the
report evaluates identity policies only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dogbreed import TEMPLATE_PATH
from dogbreed.aws.iam.managed_policies import managed_policy
from dogbreed.aws.iam.policy_evaluation import Policy
from dogbreed.aws.sam_transform import translate
from dogbreed.template_stack import (
    ACCOUNT_ID,
    REGION,
    TemplateStack,
    load_template,
    parameter_values,
)


@dataclass(frozen=True)
class Principal:
    """One IAM role of the stack: who assumes it, which resources use it, what it may do."""

    logical_id: str
    arn: str
    trusted_services: tuple[str, ...]
    used_by: tuple[str, ...]
    policies: tuple[Policy, ...]

    @property
    def name(self) -> str:
        return self.logical_id

    def describe(self) -> str:
        users = ", ".join(self.used_by) or ", ".join(self.trusted_services)
        return f"{self.logical_id} ({users})"


@dataclass
class StackPolicies:
    """The transformed template, its resolver and the principals, by role ARN."""

    stack: TemplateStack
    principals: dict[str, Principal] = field(default_factory=dict)

    def role_of(self, logical_id: str) -> Principal | None:
        """The principal of a function or state machine (or a role's own logical id)."""
        for principal in self.principals.values():
            if logical_id == principal.logical_id or logical_id in principal.used_by:
                return principal
        return None

    def resources_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.stack.resources.items() if r.get("Type") == kind}


class TransformedStack(TemplateStack):
    """The resolver over the SAM-transformed template: the resource types SAM generates too."""

    def ref(self, logical_id: str) -> str:
        resource = self.resources.get(logical_id, {})
        if resource.get("Type") == "AWS::Logs::LogGroup" and "LogGroupName" in resource.get("Properties", {}):
            return str(self.resolve(resource["Properties"]["LogGroupName"]))
        return super().ref(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if attribute == "Arn" and kind == "AWS::StepFunctions::StateMachine":
            return self.ref(logical_id)
        if attribute == "Arn" and kind == "AWS::Events::Rule":
            return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.physical_name(logical_id)}"
        if attribute == "Arn" and kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{self.ref(logical_id)}:*"
        return super().get_att(logical_id, attribute)


def stack_policies(
    parameters: Mapping[str, str], stack_name: str, template_path: Path = TEMPLATE_PATH
) -> StackPolicies:
    template = load_template(template_path)
    values = parameter_values(template, dict(parameters))
    [transformed] = translate(template, [values])
    stack = TransformedStack(transformed, values, stack_name)
    result = StackPolicies(stack)
    users = _role_users(stack)
    for logical_id, resource in stack.resources.items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        properties = stack.resolve(resource.get("Properties", {}))
        arn = stack.get_att(logical_id, "Arn")
        result.principals[arn] = Principal(
            logical_id=logical_id,
            arn=arn,
            trusted_services=_trusted_services(properties.get("AssumeRolePolicyDocument", {})),
            used_by=tuple(sorted(users.get(logical_id, ()))),
            policies=_policies(properties),
        )
    return result


def _policies(properties: Mapping[str, Any]) -> tuple[Policy, ...]:
    policies = [
        Policy.parse(str(entry["PolicyName"]), entry["PolicyDocument"])
        for entry in properties.get("Policies", [])
    ]
    policies.extend(managed_policy(str(arn)) for arn in properties.get("ManagedPolicyArns", []))
    return tuple(policies)


def _trusted_services(document: Mapping[str, Any]) -> tuple[str, ...]:
    services: list[str] = []
    for statement in document.get("Statement", []):
        service = statement.get("Principal", {}).get("Service", [])
        services.extend([service] if isinstance(service, str) else service)
    return tuple(sorted(set(services)))


def _role_logical_id(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        logical_id, _ = target if isinstance(target, list) else target.split(".", 1)
        return str(logical_id)
    return None


def _role_users(stack: TemplateStack) -> dict[str, set[str]]:
    """Role logical id -> the functions, state machines and rules that run with it."""
    users: dict[str, set[str]] = {}
    for logical_id, resource in stack.resources.items():
        properties = resource.get("Properties", {})
        kind = resource.get("Type")
        roles: list[Any] = []
        if kind == "AWS::Lambda::Function":
            roles = [properties.get("Role")]
        elif kind == "AWS::StepFunctions::StateMachine":
            roles = [properties.get("RoleArn")]
        elif kind == "AWS::Events::Rule":
            roles = [target.get("RoleArn") for target in properties.get("Targets", [])]
        for role in roles:
            role_id = _role_logical_id(role)
            if role_id:
                users.setdefault(role_id, set()).add(logical_id)
    return users
