"""Lambda concurrency in every samconfig environment: reserved and provisioned concurrency come out of
the account's regional concurrency limit, of which Lambda keeps 100 unreserved, and new accounts start
with a reduced limit. So no environment reserves any by default: each deploys in a new account, and
docs/deploy.md says how to raise them."""

from __future__ import annotations

import pytest

from dogbreed.template_stack import TemplateStack

ENVIRONMENTS = ("default", "prod")


def reserved_and_provisioned(stack: TemplateStack) -> dict[str, int]:
    """Function -> the concurrency it takes from the account once deployed with these parameters."""
    taken: dict[str, int] = {}
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
        reserved = int(properties.get("ReservedConcurrentExecutions", 0))
        provisioned = int(
            properties.get("ProvisionedConcurrencyConfig", {}).get("ProvisionedConcurrentExecutions", 0)
        )
        taken[logical_id] = reserved + provisioned
    return taken


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_environment_reserves_concurrency_by_default(environment: str) -> None:
    taken = reserved_and_provisioned(TemplateStack.load(samconfig_env=environment))

    assert taken and {name: n for name, n in taken.items() if n} == {}


def test_raising_them_is_a_parameter_away() -> None:
    # Given an account whose limit allows it, prod takes what the parameters ask for
    stack = TemplateStack.load(
        samconfig_env="prod",
        parameters={
            "ApiProvisionedConcurrency": "2",
            "ApiReservedConcurrency": "50",
            "S3ReservedConcurrency": "10",
        },
    )

    taken = reserved_and_provisioned(stack)

    assert taken["PredictApiFunction"] == 52 and taken["PredictS3Function"] == 10
