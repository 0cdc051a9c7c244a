"""Lambda concurrency in every samconfig environment: reserved and provisioned concurrency come out of
the account's regional concurrency limit, of which Lambda keeps 100 unreserved, and new accounts start
with a reduced limit. So no environment reserves any by default: each deploys in a new account, and
docs/deploy.md says how to raise them."""

from __future__ import annotations

import pytest

from dogbreed.preflight.lambda_concurrency import function_concurrency
from dogbreed.template_stack import TemplateStack

ENVIRONMENTS = ("default", "prod")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_environment_reserves_concurrency_by_default(environment: str) -> None:
    functions = function_concurrency(TemplateStack.load(samconfig_env=environment))

    assert functions and [f.logical_id for f in functions if f.reserved or f.provisioned] == []


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

    functions = {f.logical_id: f for f in function_concurrency(stack)}

    api, s3 = functions["PredictApiFunction"], functions["PredictS3Function"]
    assert (api.reserved, api.provisioned, api.taken) == (50, 2, 50)
    assert (s3.reserved, s3.provisioned, s3.taken) == (10, 0, 10)
