"""Requests checked against the constraints AWS's API models declare and only the service enforces
(botocore validates types, required fields and minimums on the client; maximums, patterns and enums
are the service's): dogbreed.aws.service_models.request_problems."""

from __future__ import annotations

import json

from dogbreed.aws.service_models import constraint_problems, operation_model, request_problems

GROUP = "dogbreed-dev"
INFERENCE = {
    "Containers": [
        {
            "Image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6-cpu-py312",
            "ModelDataUrl": "s3://bucket/models/run/model.tar.gz",
        }
    ],
    "SupportedContentTypes": ["image/jpeg"],
    "SupportedResponseMIMETypes": ["application/json"],
}


def package_request(metadata: dict[str, str]) -> dict[str, object]:
    return {
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": INFERENCE,
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": metadata,
    }


def test_a_request_within_every_constraint_has_no_problems() -> None:
    metadata = {"run_id": "run-20261204", "test_acc": "0.8571428571428571", "source": "final"}

    assert request_problems("sagemaker", "CreateModelPackage", package_request(metadata)) is None


def test_a_metadata_value_longer_than_256_or_outside_the_pattern_is_refused() -> None:
    hyperparameters = json.dumps({f"name-{i}": "value" * 4 for i in range(20)})

    problems = request_problems("sagemaker", "CreateModelPackage", package_request({"hp": hyperparameters}))

    assert problems is not None
    field = "CreateModelPackage.CustomerMetadataProperties['hp']"
    assert f"{field}: length {len(hyperparameters)}, more than the maximum 256" in problems
    assert "does not match the pattern" in problems  # JSON's quotes and braces are not allowed


def test_a_value_outside_the_enum_is_refused() -> None:
    problems = request_problems(
        "sagemaker", "CreateModelPackage", package_request({}) | {"ModelApprovalStatus": "Ok"}
    )

    assert problems is not None and "'Ok' is not one of" in problems


def test_java_patterns_with_supplementary_ranges_are_read() -> None:
    # application-autoscaling's ResourceIdMaxLen1600 is written with UTF-16 surrogate pairs
    shape = operation_model("application-autoscaling", "RegisterScalableTarget").input_shape

    fine = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/dogbreed-dev/variant/AllTraffic 🐕"}
    too_long = fine | {"ResourceId": "e" * 1601}

    assert constraint_problems(fine, shape, "RegisterScalableTarget") == []
    assert constraint_problems(too_long, shape, "RegisterScalableTarget") == [
        "RegisterScalableTarget.ResourceId: length 1601, more than the maximum 1600"
    ]
