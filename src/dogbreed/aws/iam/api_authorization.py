"""What IAM authorizes for one API call: the action, the resource ARN(s) and the condition keys,
derived from the call's parameters with the Service Authorization Reference
(`dogbreed.aws.iam.service_reference`), plus the dependent actions the reference names.

    requests_for_call("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "code/"}, region=..., account=...)
    # [s3:ListBucket on arn:aws:s3:::b with s3:prefix=code/]

Rules, each from the reference unless said otherwise:

- action: the reference row linked to the operation (`service_reference.action_for`); S3 operations
  that have no row of their own use the permission the S3 API reference names on each operation's
  page (`S3_OPERATION_ACTIONS`);
- resources: every *required* resource type of the action, its ARN format filled from the request
  (an ARN-valued parameter of that type, else the placeholders by parameter name); without required
  types, the first optional type the request fills completely; else `*`. A placeholder the request
  cannot fill becomes `*` (any resource of the type: only a statement on all of them allows it).
  SageMaker writes resource names in ARNs in lower case (the ARNs its API returns), so its ARNs are
  lower-cased;
- conditions: each service condition key of the action whose name is a request parameter
  (`s3:prefix` <- Prefix, `cloudwatch:namespace` <- Namespace);
- dependent actions: `iam:PassRole` on every role ARN the request passes (with `iam:PassedToService`
  = the service's principal) and `<service>:AddTags` on the created resource when the request carries
  Tags, where the reference lists them as dependent actions of the action.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from dogbreed.aws.iam.policy_evaluation import AuthorizationRequest
from dogbreed.aws.iam.service_reference import ResourceType, service_reference

S3_PERMISSIONS_DOC: Final = (
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html"
)
# S3 operations authorized by another operation's permission (the "Permissions" section of each
# operation's page in the Amazon S3 API Reference, summarised in S3_PERMISSIONS_DOC).
S3_OPERATION_ACTIONS: Final[dict[str, str]] = {
    "HeadObject": "GetObject",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "CopyObject": "PutObject",
    "UploadPartCopy": "PutObject",
    "ListParts": "ListMultipartUploadParts",
}
# With a VersionId, these act on an object version: s3:GetObjectVersion / s3:DeleteObjectVersion.
S3_VERSIONED_ACTIONS: Final[dict[str, str]] = {
    "GetObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
}
# Placeholders of ARN formats filled from a differently named parameter (the parameter, or a
# function of the request). None: the service generates the identifier, the request cannot name it.
_PLACEHOLDER_SOURCES: Final[dict[tuple[str, str], str | None]] = {
    ("s3", "BucketName"): "Bucket",
    ("s3", "ObjectName"): "Key",
    ("sqs", "QueueName"): "QueueUrl",
    ("events", "RuleName"): "Name",
    ("ecr", "Account"): "registryId",  # the registry's account (the DLC images live in AWS's)
    ("application-autoscaling", "ResourceId"): None,
}
_ROLE_ARN: Final = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
_NAME_CHARS: Final = re.compile(r"[^a-z0-9]")


class UnmappedOperation(LookupError):
    """The reference names no action for the operation: the call cannot be judged."""


def requests_for_call(
    prefix: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    partition: str = "aws",
) -> list[AuthorizationRequest]:
    """Every authorization request IAM makes for `prefix`'s `operation` called with `params`."""
    action = _action(prefix, operation, params)
    if action is None:
        raise UnmappedOperation(f"{prefix} {operation}: no action in the Service Authorization Reference")
    values = {"Partition": partition, "Region": region, "Account": account}
    resources = list(_resources(prefix, action, params, values))
    context = _context(prefix, action, params)
    requests = [AuthorizationRequest.of(f"{prefix}:{action}", resource, context) for resource in resources]
    if operation == "CopyObject" and prefix == "s3" and "CopySource" in params:
        source = str(params["CopySource"]).lstrip("/").split("?", 1)[0]
        requests.append(AuthorizationRequest.of("s3:GetObject", f"arn:{partition}:s3:::{source}"))
    requests.extend(_dependent(prefix, action, params, resources, partition))
    return requests


def _action(prefix: str, operation: str, params: Mapping[str, Any]) -> str | None:
    action = S3_OPERATION_ACTIONS.get(operation) if prefix == "s3" else None
    action = action or service_reference().action_for(prefix, operation)
    if prefix == "s3" and action in S3_VERSIONED_ACTIONS and params.get("VersionId"):
        action = S3_VERSIONED_ACTIONS[action]
    return action


def _normalized(name: str) -> str:
    return _NAME_CHARS.sub("", name.lower())


def _parameter(prefix: str, placeholder: str, params: Mapping[str, Any]) -> Any:
    """The request's value for an ARN placeholder; `*` when the service generates it; None if absent."""
    key = (prefix, placeholder)
    if key in _PLACEHOLDER_SOURCES:
        source = _PLACEHOLDER_SOURCES[key]
        if source is None:
            return "*"
        value = params.get(source)
        if source == "QueueUrl" and isinstance(value, str):
            return value.rstrip("/").rsplit("/", 1)[-1]
        return value
    wanted = _normalized(placeholder)
    for name, value in params.items():
        if _normalized(name) in (wanted, wanted + "s"):  # AlarmNames fills AlarmName
            return value
    return None


def _fill(
    prefix: str, resource_type: ResourceType, params: Mapping[str, Any], values: dict[str, str]
) -> list[str]:
    """The ARNs of `resource_type` the request names (several for a list parameter); [] if it names none."""
    for candidate in params.values():  # an ARN-valued parameter of this type names it directly
        if isinstance(candidate, str) and candidate.startswith("arn:") and resource_type.matches(candidate):
            return [_lower_sagemaker(prefix, candidate)]
    arns = [resource_type.arn_format]
    for placeholder in resource_type.placeholders:
        if placeholder in values and (prefix, placeholder) not in _PLACEHOLDER_SOURCES:
            value: Any = values[placeholder]
        else:
            value = _parameter(prefix, placeholder, params) or values.get(placeholder)
        if value is None or value == []:
            return []
        if isinstance(value, str) and value.startswith("arn:"):
            value = value.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        items = [str(item) for item in value] if isinstance(value, list) else [str(value)]
        arns = [arn.replace("${" + placeholder + "}", item) for arn in arns for item in items]
    return [_lower_sagemaker(prefix, arn) for arn in arns]


def _lower_sagemaker(prefix: str, arn: str) -> str:
    return arn.lower() if prefix == "sagemaker" else arn


def _resources(prefix: str, action: str, params: Mapping[str, Any], values: dict[str, str]) -> Iterator[str]:
    types = service_reference().resource_types(prefix, action)
    required = [resource_type for resource_type in types if resource_type.required]
    if required:
        for resource_type in required:
            arns = _fill(prefix, resource_type, params, values)
            if not arns:  # the request does not say which: any resource of the type
                arns = [_any_of(resource_type, values)]
            yield from arns
        return
    for resource_type in types:
        if "accesspoint" in resource_type.name:  # S3 access points: only when addressed as one
            continue
        arns = _fill(prefix, resource_type, params, values)
        if arns:
            yield from arns
            return
    yield "*"


def _any_of(resource_type: ResourceType, values: dict[str, str]) -> str:
    arn = resource_type.arn_format
    for placeholder in resource_type.placeholders:
        arn = arn.replace("${" + placeholder + "}", values.get(placeholder, "*"))
    return arn


def _context(prefix: str, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for key in service_reference().condition_keys(prefix, action):
        service, _, name = key.partition(":")
        if service != prefix or "$" in name or "/" in name:
            continue
        wanted = _normalized(name)
        for param, value in params.items():
            if _normalized(param) == wanted and isinstance(value, str | int | list):
                context[key] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return context


def _roles_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and _ROLE_ARN.match(value):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _roles_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _roles_in(item)


def _dependent(
    prefix: str, action: str, params: Mapping[str, Any], resources: list[str], partition: str
) -> Iterator[AuthorizationRequest]:
    dependent = service_reference().dependent_actions(prefix, action)
    if "iam:PassRole" in dependent:
        for role in sorted(set(_roles_in(params))):
            yield AuthorizationRequest.of(
                "iam:PassRole", role, {"iam:PassedToService": f"{prefix}.amazonaws.com"}
            )
    tagging = f"{prefix}:AddTags"
    if tagging in dependent and params.get("Tags") and resources:
        yield AuthorizationRequest.of(tagging, resources[0])
