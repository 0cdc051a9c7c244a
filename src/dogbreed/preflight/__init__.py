"""`dogbreed deploy --check`: what a first pipeline run needs, asked of the account before a deploy.

Each check compares what the chosen environment needs (template.yaml's parameters with the
environment's overrides, as a `TemplateStack`) with what the account and region give, and names the
action when it falls short:

- **stack name**: the endpoint and the model package group are named after the stack, so the name
  must fit botocore's EndpointName and EntityName shapes (pattern, at most 63 characters) and be
  lowercase (SageMaker lowercases names in ARNs; the state machine's IAM scopes spell them as given);
- **region and images**: the region is in the template's `DlcRegistry` mapping, and the two PyTorch
  images the template builds from `DlcRegistry` and `PyTorchRelease` exist there (ECR DescribeImages
  on the registry account, else BatchGetImage; if neither is allowed: not verifiable);
- **Lambda concurrency**: what the stack carves out of the account (reserved concurrency; provisioned
  concurrency of a function without reserved concurrency, since provisioned counts toward a
  function's reserved concurrency) plus the 100 Lambda keeps unreserved, against the account's
  UnreservedConcurrentExecutions plus what this stack reserves already (a redeploy);
- **SageMaker quotas** (Service Quotas, service code `sagemaker`, applied value else AWS default):
  "<type> for spot training job usage" (or "... for training job usage" without spot) for the
  tuning trials that run at once and the final job's instances (one after the other, so the larger
  count), and "<type> for endpoint usage" for the endpoint at EndpointMaxInstances and during a
  blue/green update at its floor (SageMaker runs the new fleet beside the old one).

A check whose answer cannot be had (access denied, an API the local cloud does not emulate, an
unexpected error) is UNVERIFIED with the reason; nothing here raises for an account's answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from dogbreed.template_stack import TemplateError, TemplateStack

# Lambda keeps this much of the account's concurrency unreserved for functions without a reservation.
LAMBDA_UNRESERVED_MINIMUM: Final = 100
SAGEMAKER_QUOTA_SERVICE: Final = "sagemaker"
# The state machine substitutions that carry the PyTorch image URIs (template.yaml builds them from
# Mappings DlcRegistry and PyTorchRelease unless TrainingImageUri / InferenceImageUri are given).
IMAGE_SUBSTITUTIONS: Final = {"training image": "TrainingImageUri", "inference image": "InferenceImageUri"}
# Names the stack gives SageMaker resources: the endpoint (EndpointName) and the model package group.
NAMED_AFTER_STACK: Final = ("EndpointName", "EntityName")
_DENIED_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)
_ECR_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.[a-z0-9.]+/(?P<repository>[^:@]+):(?P<tag>[^:@]+)$"
)


class Status(StrEnum):
    OK = "OK"
    FIX = "FIX"  # a setting of yours to change
    RAISE = "RAISE"  # an account limit to raise
    UNVERIFIED = "UNVERIFIED"  # the account could not be asked

    @property
    def blocks(self) -> bool:
        return self in (Status.FIX, Status.RAISE)


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    needed: str
    status: Status
    action: str = ""


@dataclass(frozen=True)
class Account:
    """Where the checks ask: clients for the target's account (`client(service, region)`, region None
    for the target's), its region, and whether it is the local cloud (an API it does not emulate is
    then said to be not emulated)."""

    client: Callable[..., Any]
    region: str
    local: bool = False


class NoAnswer(Exception):
    """The account could not be asked; `denied` when the credentials lack the permission."""

    def __init__(self, reason: str, *, denied: bool = False) -> None:
        super().__init__(reason)
        self.denied = denied


def _action_name(client: Any, operation: str) -> str:
    api = client.meta.method_to_api_mapping.get(operation, operation)
    return f"{client.meta.service_model.signing_name}:{api}"


def _no_answer(account: Account, client: Any, operation: str, error: Exception) -> NoAnswer | None:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    action = _action_name(client, operation)
    if account.local:
        return NoAnswer(f"not emulated by the local cloud ({action}: {code or type(error).__name__})")
    if code in _DENIED_CODES:
        return NoAnswer(f"not verifiable with your credentials ({action} denied)", denied=True)
    return None


def _ask(account: Account, service: str, operation: str, *, region: str | None = None, **request: Any) -> Any:
    """One API call; NoAnswer when access is denied or the local cloud does not answer it."""
    client = account.client(service, region)
    try:
        return getattr(client, operation)(**request)
    except (ClientError, BotoCoreError) as error:
        no_answer = _no_answer(account, client, operation, error)
        if no_answer is None:
            raise
        raise no_answer from error


def _ask_pages(account: Account, service: str, operation: str, **request: Any) -> list[dict[str, Any]]:
    client = account.client(service, None)
    try:
        return list(client.get_paginator(operation).paginate(**request))
    except (ClientError, BotoCoreError) as error:
        no_answer = _no_answer(account, client, operation, error)
        if no_answer is None:
            raise
        raise no_answer from error


# --- stack name ------------------------------------------------------------------------------------


@cache
def _name_shapes() -> tuple[tuple[str, str, int], ...]:
    """(shape, pattern, max length) of the SageMaker names the stack name becomes (botocore's model)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    shapes = (model.shape_for(name) for name in NAMED_AFTER_STACK)
    return tuple((shape.name, shape.metadata["pattern"], int(shape.metadata["max"])) for shape in shapes)


def check_stack_name(name: str) -> Check:
    longest = min(max_length for _, _, max_length in _name_shapes())
    problems = []
    if name != name.lower():
        problems.append("has upper-case letters")
    if len(name) > longest:
        problems.append(f"is {len(name)} characters long")
    for shape, pattern, _ in _name_shapes():
        if not re.fullmatch(pattern, name):
            problems.append(f"does not match SageMaker's {shape} pattern {pattern}")
            break
    return Check(
        "stack name",
        name,
        f"lowercase, <= {longest} chars, letters, digits, hyphens",
        Status.FIX if problems else Status.OK,
        f"the name {' and '.join(problems)}: the endpoint and the model package group are named after "
        "the stack; choose another (--stack NAME, or stack_name in samconfig.toml)"
        if problems
        else "",
    )


def check_template_rules(stack: TemplateStack) -> Check:
    """The template's Rules with these parameters: CloudFormation refuses a deploy that breaks one."""
    broken = stack.broken_rules()
    return Check(
        "parameter rules",
        f"{len(broken)} broken" if broken else "all hold",
        "template.yaml's Rules",
        Status.FIX if broken else Status.OK,
        "; ".join(broken),
    )


# --- region and images -----------------------------------------------------------------------------


@cache
def url_suffix(region: str) -> str:
    """AWS::URLSuffix of a region: its partition's DNS suffix in botocore's endpoint data."""
    from botocore.loaders import Loader

    for partition in Loader().load_data("endpoints")["partitions"]:
        if region in partition["regions"] or re.match(partition["regionRegex"], region):
            return str(partition["dnsSuffix"])
    return "amazonaws.com"


def image_uris(stack: TemplateStack, region: str) -> dict[str, str]:
    """The image URIs the template gives the pipeline in `region` (TemplateError where the template
    cannot build one there: a region outside DlcRegistry)."""
    regional = TemplateStack(
        stack.template,
        {**stack.parameters, "AWS::Region": region, "AWS::URLSuffix": url_suffix(region)},
        stack.stack_name,
    )
    substitutions = next(
        resource["Properties"]["DefinitionSubstitutions"]
        for resource in stack.resources.values()
        if "TrainingImageUri" in resource.get("Properties", {}).get("DefinitionSubstitutions", {})
    )
    return {label: str(regional.resolve(substitutions[key])) for label, key in IMAGE_SUBSTITUTIONS.items()}


def check_region(stack: TemplateStack, region: str) -> Check:
    registries = stack.template.get("Mappings", {}).get("DlcRegistry", {})
    own_images = all(stack.parameters.get(key) for key in IMAGE_SUBSTITUTIONS.values())
    if region in registries or own_images:
        return Check(
            "region",
            region,
            "in template.yaml's DlcRegistry mapping",
            Status.OK,
        )
    return Check(
        "region",
        region,
        "in template.yaml's DlcRegistry mapping",
        Status.FIX,
        "the PyTorch images are resolved from that mapping: choose one of its regions (--region, or "
        "region in samconfig.toml), or pass TrainingImageUri= and InferenceImageUri= overrides",
    )


def _image_found(account: Account, match: re.Match[str]) -> bool:
    request: dict[str, Any] = {
        "registryId": match["registry"],
        "repositoryName": match["repository"],
        "imageIds": [{"imageTag": match["tag"]}],
    }
    try:
        described = _ask(account, "ecr", "describe_images", region=match["region"], **request)
        return bool(described.get("imageDetails"))
    except NoAnswer as no_answer:
        if not no_answer.denied:
            raise
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in (
            "ImageNotFoundException",
            "RepositoryNotFoundException",
        ):
            return False
        raise
    # DescribeImages denied: a pull of the manifest (what SageMaker does) answers too.
    try:
        pulled = _ask(account, "ecr", "batch_get_image", region=match["region"], **request)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
            return False
        raise
    return bool(pulled.get("images"))


def image_checks(stack: TemplateStack, account: Account) -> Iterator[Check]:
    try:
        uris = image_uris(stack, account.region)
    except TemplateError:
        for label in IMAGE_SUBSTITUTIONS:
            yield Check(
                label,
                "-",
                f"a PyTorch image in {account.region}",
                Status.FIX,
                f"no DlcRegistry account for {account.region}: see the region check",
            )
        return
    for label, uri in uris.items():
        match = _ECR_IMAGE.match(uri)
        if match is None:
            yield Check(
                label, uri, "an ECR image", Status.UNVERIFIED, "not an ECR image URI: check it yourself"
            )
            continue
        short = f"{match['registry']}/{match['repository']}:{match['tag']}"
        needed = f"exists in {match['region']}"
        try:
            found = _image_found(account, match)
        except (NoAnswer, ClientError, BotoCoreError) as error:
            yield Check(label, short, needed, Status.UNVERIFIED, _reason(error))
            continue
        if found:
            yield Check(label, short, needed, Status.OK)
        else:
            yield Check(
                label,
                short,
                needed,
                Status.FIX,
                f"{uri} does not exist: choose a region of the DlcRegistry mapping, or pass "
                "TrainingImageUri= / InferenceImageUri= overrides",
            )


# --- Lambda concurrency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionConcurrency:
    logical_id: str
    reserved: int | None
    provisioned: int

    @property
    def taken(self) -> int:
        """What the function carves out of the account: provisioned concurrency counts toward a
        function's reserved concurrency, and comes out of the unreserved pool without one."""
        return self.reserved if self.reserved is not None else self.provisioned


def function_concurrency(stack: TemplateStack) -> list[FunctionConcurrency]:
    """Every function's reserved and provisioned concurrency with the stack's parameters."""
    found = []
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = stack.resolve(
            {
                key: value
                for key, value in resource["Properties"].items()
                if key in ("ReservedConcurrentExecutions", "ProvisionedConcurrencyConfig")
            }
        )
        reserved = properties.get("ReservedConcurrentExecutions")
        provisioned = properties.get("ProvisionedConcurrencyConfig", {}).get(
            "ProvisionedConcurrentExecutions", 0
        )
        found.append(
            FunctionConcurrency(logical_id, None if reserved is None else int(reserved), int(provisioned))
        )
    return found


def _reserved_by_stack(account: Account, stack_name: str) -> int:
    """What the deployed stack's functions reserve now (0 when it is not deployed): a redeploy
    frees it before it takes it again."""
    try:
        pages = _ask_pages(account, "cloudformation", "list_stack_resources", StackName=stack_name)
    except NoAnswer:
        return 0
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":  # no such stack
            return 0
        raise
    names = [
        item["PhysicalResourceId"]
        for page in pages
        for item in page["StackResourceSummaries"]
        if item["ResourceType"] == "AWS::Lambda::Function" and item.get("PhysicalResourceId")
    ]
    reserved = 0
    for name in names:
        answer = _ask(account, "lambda", "get_function_concurrency", FunctionName=name)
        reserved += int(answer.get("ReservedConcurrentExecutions", 0))
    return reserved


def check_lambda_concurrency(stack: TemplateStack, account: Account) -> list[Check]:
    functions = function_concurrency(stack)
    checks = [
        Check(
            f"{item.logical_id} provisioned",
            str(item.provisioned),
            f"<= its reserved concurrency {item.reserved}",
            Status.FIX,
            "Lambda refuses provisioned concurrency above a function's reserved concurrency: lower "
            "ApiProvisionedConcurrency or raise ApiReservedConcurrency",
        )
        for item in functions
        if item.reserved is not None and item.provisioned > item.reserved
    ]
    taken = sum(item.taken for item in functions)
    name = "Lambda concurrency"
    if taken == 0:
        return [*checks, Check(name, "-", "none reserved or provisioned", Status.OK)]
    needed = taken + LAMBDA_UNRESERVED_MINIMUM
    needed_text = f"{taken} for the stack + {LAMBDA_UNRESERVED_MINIMUM} unreserved = {needed}"
    try:
        limits = _ask(account, "lambda", "get_account_settings")["AccountLimit"]
        already = 0 if account.local else _reserved_by_stack(account, stack.stack_name)
    except (NoAnswer, ClientError, BotoCoreError) as error:
        return [*checks, Check(name, "?", needed_text, Status.UNVERIFIED, _reason(error))]
    unreserved, limit = int(limits["UnreservedConcurrentExecutions"]), int(limits["ConcurrentExecutions"])
    value = f"{unreserved} unreserved of {limit}" + (f" (+{already} this stack holds)" if already else "")
    if unreserved + already >= needed:
        return [*checks, Check(name, value, needed_text, Status.OK)]
    raise_to = limit + needed - unreserved - already
    return [
        *checks,
        Check(
            name,
            value,
            needed_text,
            Status.RAISE,
            f"request 'Concurrent executions' (AWS Lambda, Service Quotas) >= {raise_to}, "
            "or lower ApiReservedConcurrency / S3ReservedConcurrency / ApiProvisionedConcurrency",
        ),
    ]


# --- SageMaker quotas ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaNeed:
    quota: str  # the Service Quotas name, e.g. "ml.g4dn.xlarge for spot training job usage"
    count: int
    why: str
    parameter: str  # the instance type parameter behind it


def quota_needs(parameters: dict[str, str]) -> list[QuotaNeed]:
    """The SageMaker instance quotas a run needs with these template parameters."""
    usage = "spot training job usage" if parameters["UseSpotTraining"] == "true" else "training job usage"
    parallel = min(int(parameters["MaxParallelTuningJobs"]), int(parameters["MaxTuningJobs"]))
    training: list[tuple[str, int, str, str]] = [
        (
            parameters["TuningInstanceType"],
            parallel,
            f"{parallel} tuning trial{'s' if parallel != 1 else ''} at once",
            "TuningInstanceType",
        )
    ]
    if parameters["ReuseTuningArtifact"] != "true":
        final = int(parameters["FinalTrainingInstanceCount"])
        training.append(
            (parameters["TrainingInstanceType"], final, f"final job on {final}", "TrainingInstanceType")
        )
    needs: dict[str, QuotaNeed] = {}
    for instance_type, count, why, parameter in training:  # tuning, then the final job: the larger
        quota = f"{instance_type} for {usage}"
        if quota in needs:
            earlier = needs[quota]
            needs[quota] = QuotaNeed(
                quota, max(earlier.count, count), f"{earlier.why}; {why}", earlier.parameter
            )
        else:
            needs[quota] = QuotaNeed(quota, count, why, parameter)
    if parameters.get("EndpointType", "instance") == "instance":  # a serverless endpoint uses no instances
        floor, ceiling = int(parameters["EndpointMinInstances"]), int(parameters["EndpointMaxInstances"])
        endpoint = f"{parameters['EndpointInstanceType']} for endpoint usage"
        needs[endpoint] = QuotaNeed(
            endpoint,
            max(ceiling, 2 * floor),
            f"scales to {ceiling}; 2 x {floor} in a blue/green update",
            "EndpointInstanceType",
        )
    return list(needs.values())


@dataclass(frozen=True)
class Quota:
    code: str
    value: int
    applied: bool  # the account's applied value (else the AWS default)


def sagemaker_quotas(account: Account) -> dict[str, Quota]:
    """SageMaker's quotas by name: the applied value where Service Quotas has one (ListServiceQuotas
    returns only those), else the AWS default (ListAWSDefaultServiceQuotas)."""
    quotas: dict[str, Quota] = {}
    for applied, operation in ((False, "list_aws_default_service_quotas"), (True, "list_service_quotas")):
        for page in _ask_pages(account, "service-quotas", operation, ServiceCode=SAGEMAKER_QUOTA_SERVICE):
            for item in page.get("Quotas", []):
                if "Value" in item:
                    quotas[item["QuotaName"]] = Quota(item["QuotaCode"], int(item["Value"]), applied)
    return quotas


def quota_checks(stack: TemplateStack, account: Account) -> list[Check]:
    needs = quota_needs(stack.parameters)
    try:
        quotas = sagemaker_quotas(account)
    except (NoAnswer, ClientError, BotoCoreError) as error:
        return [
            Check(need.quota, "?", f">= {need.count} ({need.why})", Status.UNVERIFIED, _reason(error))
            for need in needs
        ]
    checks = []
    for need in needs:
        needed = f">= {need.count} ({need.why})"
        quota = quotas.get(need.quota)
        if quota is None:
            checks.append(
                Check(
                    need.quota,
                    "none",
                    needed,
                    Status.FIX,
                    f"Service Quotas lists no such quota in {account.region}: SageMaker offers no such "
                    f"instances for this use there; choose another {need.parameter}",
                )
            )
            continue
        value = f"{quota.value} ({'applied' if quota.applied else 'AWS default'})"
        if quota.value >= need.count:
            checks.append(Check(need.quota, value, needed, Status.OK))
            continue
        checks.append(
            Check(
                need.quota,
                value,
                needed,
                Status.RAISE,
                f"aws service-quotas request-service-quota-increase --service-code {SAGEMAKER_QUOTA_SERVICE} "
                f"--quota-code {quota.code} --desired-value {need.count} --region {account.region}",
            )
        )
    return checks


# --- all of them -----------------------------------------------------------------------------------


def _reason(error: BaseException) -> str:
    if isinstance(error, NoAnswer):
        return str(error)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"could not check: {details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    return f"could not check: {error}"


def run_checks(stack: TemplateStack, account: Account) -> list[Check]:
    """Every check, in the order a first deploy meets them."""
    return [
        check_stack_name(stack.stack_name),
        check_template_rules(stack),
        check_region(stack, account.region),
        *image_checks(stack, account),
        *check_lambda_concurrency(stack, account),
        *quota_checks(stack, account),
    ]
