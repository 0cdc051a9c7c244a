"""The documents of the AWS managed policies a role of the stack has attached by ARN (SAM attaches
AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess and AWSLambdaVPCAccessExecutionRole on its own).

IAM does not ship inside botocore, and the local cloud has no IAM to ask: the documents are copied,
with their page and version, from the AWS Managed Policy Reference Guide into `managed_policies.json`
(one data file). An ARN that is not there is an error, never an empty policy.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

from dogbreed.aws.iam.policy_evaluation import Policy


class UnknownManagedPolicy(KeyError):
    """A managed policy ARN whose document is not in managed_policies.json."""


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    text = (
        importlib.resources.files("dogbreed.aws.iam")
        .joinpath("managed_policies.json")
        .read_text(encoding="utf-8")
    )
    policies: dict[str, dict[str, Any]] = json.loads(text)["policies"]
    return policies


def managed_policy(arn: str) -> Policy:
    entry = _documents().get(arn)
    if entry is None:
        raise UnknownManagedPolicy(
            f"{arn}: add its document from the AWS Managed Policy Reference Guide to "
            "src/dogbreed/aws/iam/managed_policies.json"
        )
    return Policy.parse(arn.rsplit("/", 1)[-1], entry["document"], source=arn)


def managed_policy_doc(arn: str) -> str:
    return str(_documents()[arn]["doc"])
