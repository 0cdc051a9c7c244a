"""Shared pieces of the `dogbreed deploy` tests: botocore clients answered by Stubber (requests and
responses checked against botocore's service models), and answers shaped like AWS's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import botocore.session
from botocore.stub import Stubber

from dogbreed.preflight.account import Account

REGION = "us-east-1"
DLC_REGISTRY = "763104351884"


class StubbedAccount:
    """One stubbed client per service; `account` hands them to the checks."""

    def __init__(self, region: str = REGION, *, local: bool = False) -> None:
        self.region = region
        self.local = local
        self._session = botocore.session.get_session()
        self._clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}

    def stub(self, service: str) -> Stubber:
        if service not in self.stubbers:
            client = self._session.create_client(
                service, region_name=self.region, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            self._clients[service] = client
            self.stubbers[service] = Stubber(client)
        return self.stubbers[service]

    def client(self, service: str, region: str | None = None) -> Any:
        self.stub(service)
        return self._clients[service]

    @property
    def account(self) -> Account:
        return Account(self.client, self.region, local=self.local)

    @contextmanager
    def active(self) -> Iterator[StubbedAccount]:
        with ExitStack() as stack:
            for stubber in self.stubbers.values():
                stack.enter_context(stubber)
            yield self


def image_details(repository: str, tag: str) -> dict[str, Any]:
    return {
        "imageDetails": [
            {
                "registryId": DLC_REGISTRY,
                "repositoryName": repository,
                "imageDigest": "sha256:" + "0" * 64,
                "imageTags": [tag],
                "imagePushedAt": dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
            }
        ]
    }


def quota(name: str, code: str, value: float) -> dict[str, Any]:
    return {
        "ServiceCode": "sagemaker",
        "ServiceName": "Amazon SageMaker",
        "QuotaArn": f"arn:aws:servicequotas:{REGION}:123456789012:sagemaker/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


def account_settings(limit: int, unreserved: int) -> dict[str, Any]:
    return {
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": unreserved,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
    }


class StubbedSession:
    """A boto3-session stand-in whose clients are a StubbedAccount's (what `StackTarget.session()`
    gives the CLI)."""

    def __init__(self, stubbed: StubbedAccount) -> None:
        self.stubbed = stubbed
        self.region_name = stubbed.region

    def client(self, service: str, region_name: str | None = None, **_: Any) -> Any:
        return self.stubbed.client(service, region_name)


def caller_identity() -> dict[str, Any]:
    return {"UserId": "AIDAEXAMPLE", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/ops"}
