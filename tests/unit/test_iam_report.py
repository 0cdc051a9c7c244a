"""The IAM report (dogbreed.aws.iam.report) on hand-made calls, and the stack's principals as the SAM
transform of template.yaml gives them (dogbreed.aws.iam.stack_principals)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dogbreed.aws.iam.policy_evaluation import AuthorizationRequest, Policy, evaluate
from dogbreed.aws.iam.report import (
    JUSTIFICATION_TABLE_HEADER,
    Justification,
    build_report,
    read_justifications,
)
from dogbreed.aws.iam.service_behaviour import ServiceCall
from dogbreed.aws.iam.stack_principals import Principal, StackPolicies, stack_policies
from dogbreed.local.cloud.stack import LOCAL_PARAMETERS

ROLE = "arn:aws:iam::123456789012:role/dogbreed-local-PredictS3FunctionRole"
BUCKET = "arn:aws:s3:::inference"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/dogbreed-local-RunsTable"


def principal() -> Principal:
    document = {
        "Statement": [
            {
                "Sid": "ReadIncoming",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{BUCKET}/incoming/*",
            },
            {
                "Sid": "WriteResults",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"{BUCKET}/results/*",
            },
            {
                "Sid": "Odd",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:dynamodb:*:*:table/x",
            },
        ]
    }
    return Principal(
        "PredictS3FunctionRole",
        ROLE,
        ("lambda.amazonaws.com",),
        ("PredictS3Function",),
        (Policy.parse("PredictS3FunctionRolePolicy1", document),),
    )


def call(action: str, resource: str) -> ServiceCall:
    return ServiceCall(ROLE, "s3", action, (AuthorizationRequest.of(action, resource),), "recorded")


def test_a_call_the_policies_deny_is_reported_with_the_reason() -> None:
    report = build_report({ROLE: principal()}, [call("s3:GetObject", f"{BUCKET}/results/a.json")])

    [(denied_call, decision)] = report.denied
    assert (denied_call.operation, decision.reason) == ("s3:GetObject", "no statement allows it")


def test_allowed_calls_are_counted_per_action_and_granting_prefix() -> None:
    calls = [call("s3:GetObject", f"{BUCKET}/incoming/{n}.jpg") for n in range(3)]

    [item] = build_report({ROLE: principal()}, calls).principals

    assert dict(item.calls) == {("s3:GetObject", f"{BUCKET}/incoming/*", "recorded"): 3}
    assert len(item.resources[("s3:GetObject", f"{BUCKET}/incoming/*", "recorded")]) == 3


def test_a_grant_no_call_used_is_unused_and_justified_only_by_a_matching_row() -> None:
    rows = [Justification("PredictS3*", ("Write*",), ("s3:PutObject",), "failure path")]

    [item] = build_report(
        {ROLE: principal()}, [call("s3:GetObject", f"{BUCKET}/incoming/a.jpg")], rows
    ).principals

    assert [(str(grant), why.reason if why else None) for grant, why in item.unused] == [
        (f"WriteResults: s3:PutObject on {BUCKET}/results/*", "failure path")
    ]
    # s3:PutObject on a DynamoDB table ARN grants nothing: it is not reported as unused
    assert [str(grant) for grant in item.inapplicable] == [
        "Odd: s3:PutObject on arn:aws:dynamodb:*:*:table/x"
    ]


def test_a_call_by_a_role_outside_the_stack_is_set_apart() -> None:
    stranger = ServiceCall(
        "arn:aws:iam::1:role/other",
        "s3",
        "GetObject",
        (AuthorizationRequest.of("s3:GetObject", f"{BUCKET}/incoming/a"),),
        "recorded",
    )

    report = build_report({ROLE: principal()}, [stranger])

    assert report.unattributed == [stranger] and not report.denied


def test_the_justification_table_is_read_from_its_header(tmp_path: Path) -> None:
    doc = tmp_path / "security.md"
    doc.write_text(
        "intro\n\n" + JUSTIFICATION_TABLE_HEADER + "\n| --- | --- | --- | --- |\n"
        "| `*FunctionRole` | `A, B` | `logs:CreateLogGroup, ec2:*` | why |\n\nafter\n",
        encoding="utf-8",
    )

    assert read_justifications(doc) == [
        Justification("*FunctionRole", ("A", "B"), ("logs:CreateLogGroup", "ec2:*"), "why")
    ]


@pytest.fixture(scope="module")
def stack() -> StackPolicies:
    return stack_policies(LOCAL_PARAMETERS, "dogbreed-local")


def test_every_role_of_the_transformed_template_is_a_principal_with_its_users(stack: StackPolicies) -> None:
    used_by = {p.logical_id: p.used_by for p in stack.principals.values()}

    assert used_by["TrainingPipelineRole"] == ("TrainingPipeline",)
    assert used_by["PredictApiFunctionRole"] == ("PredictApiFunction",)
    assert used_by["TrainingPipelineDatasetManifestRole"] == ("TrainingPipelineDatasetManifest",)
    assert (
        "sagemaker.amazonaws.com"
        in stack.principals[
            "arn:aws:iam::123456789012:role/dogbreed-local-SageMakerExecutionRole"
        ].trusted_services
    )


def test_the_state_machine_may_release_the_endpoint_lease_but_not_delete_other_items(
    stack: StackPolicies,
) -> None:
    role = stack.role_of("TrainingPipeline")
    assert role is not None

    release = evaluate(role.policies, AuthorizationRequest.of("dynamodb:DeleteItem", TABLE))
    elsewhere = evaluate(
        role.policies, AuthorizationRequest.of("dynamodb:DeleteItem", TABLE.replace("Runs", "Predictions"))
    )

    assert (release.allowed, elsewhere.allowed) == (True, False)


def test_outside_a_vpc_the_functions_may_not_create_network_interfaces(stack: StackPolicies) -> None:
    role = stack.role_of("PredictApiFunction")
    assert role is not None

    decision = evaluate(role.policies, AuthorizationRequest.of("ec2:CreateNetworkInterface", "*"))

    assert (decision.allowed, decision.reason) == (False, "explicit deny")


def test_the_state_machine_may_read_what_a_hand_made_endpoint_serves_but_not_change_it(
    stack: StackPolicies,
) -> None:
    # The gate describes the endpoint's config and model whoever named them (ProductionFromRegistry)
    role = stack.role_of("TrainingPipeline")
    assert role is not None
    prefix = "arn:aws:sagemaker:us-east-1:123456789012"

    reads = [
        evaluate(role.policies, AuthorizationRequest.of(action, f"{prefix}:{resource}")).allowed
        for action, resource in (
            ("sagemaker:DescribeEndpointConfig", "endpoint-config/made-by-hand"),
            ("sagemaker:DescribeModel", "model/made-by-hand"),
        )
    ]
    writes = [
        evaluate(role.policies, AuthorizationRequest.of(action, f"{prefix}:{resource}")).allowed
        for action, resource in (
            ("sagemaker:CreateEndpointConfig", "endpoint-config/made-by-hand"),
            ("sagemaker:CreateModel", "model/made-by-hand"),
        )
    ]

    assert (reads, writes) == ([True, True], [False, False])
