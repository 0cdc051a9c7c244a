"""Lambda concurrency: what the stack reserves and provisions, against what the account leaves
unreserved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from dogbreed.preflight.account import Account, Check, NoAnswer, Status, ask, ask_pages, unverified_reason
from dogbreed.template_stack import TemplateStack

# Lambda keeps this much of the account's concurrency unreserved for functions without a reservation.
LAMBDA_UNRESERVED_MINIMUM: Final = 100


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
        pages = ask_pages(account, "cloudformation", "list_stack_resources", StackName=stack_name)
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
        answer = ask(account, "lambda", "get_function_concurrency", FunctionName=name)
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
        limits = ask(account, "lambda", "get_account_settings")["AccountLimit"]
        already = 0 if account.local else _reserved_by_stack(account, stack.stack_name)
    except (NoAnswer, ClientError, BotoCoreError) as error:
        return [*checks, Check(name, "?", needed_text, Status.UNVERIFIED, unverified_reason(error))]
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
