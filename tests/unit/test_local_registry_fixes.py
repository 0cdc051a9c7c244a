"""moto's model registry as the local cloud serves it: an approval keeps a package's metadata, as
SageMaker's UpdateModelPackage does (it adds or overwrites the given keys, removes the listed ones)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dogbreed.local.sagemaker import registry_fixes

SPEC = {"Containers": [{"Image": "i"}], "SupportedContentTypes": ["a"], "SupportedResponseMIMETypes": ["b"]}


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    registry_fixes.install()
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName="g")
        yield client


def _package(sagemaker: Any) -> str:
    arn: str = sagemaker.create_model_package(
        ModelPackageGroupName="g",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification=SPEC,
        CustomerMetadataProperties={"test_acc": "0.9", "run_id": "r1"},
    )["ModelPackageArn"]
    return arn


def test_an_approval_keeps_the_packages_metadata(sagemaker: Any) -> None:
    arn = _package(sagemaker)

    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="ok"
    )

    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"test_acc": "0.9", "run_id": "r1"}
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == ("Approved", "ok")


def test_given_metadata_is_added_and_listed_keys_removed(sagemaker: Any) -> None:
    arn = _package(sagemaker)

    sagemaker.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"test_acc": "0.95", "note": "x"},
        CustomerMetadataPropertiesToRemove=["run_id"],
    )

    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"test_acc": "0.95", "note": "x"}


def test_the_fix_knows_the_moto_it_patches() -> None:
    assert registry_fixes.check_moto_internals() == []
