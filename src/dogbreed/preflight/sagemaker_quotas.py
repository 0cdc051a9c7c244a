"""SageMaker quotas: the training and endpoint instances a run needs, against Service Quotas' applied
values (else the AWS defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from dogbreed.preflight.account import Account, Check, NoAnswer, Status, ask_pages, unverified_reason
from dogbreed.template_stack import TemplateStack

SAGEMAKER_QUOTA_SERVICE: Final = "sagemaker"


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
        for page in ask_pages(account, "service-quotas", operation, ServiceCode=SAGEMAKER_QUOTA_SERVICE):
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
            Check(
                need.quota, "?", f">= {need.count} ({need.why})", Status.UNVERIFIED, unverified_reason(error)
            )
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
