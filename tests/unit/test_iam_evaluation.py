"""The identity-policy evaluator (dogbreed.aws.iam.policy_evaluation) against AWS's evaluation rules,
and against moto's evaluator where moto follows them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult

from dogbreed.aws.iam.policy_evaluation import AuthorizationRequest, Policy, UnsupportedCondition, evaluate

BUCKET = "arn:aws:s3:::data"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse("p", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_an_allow_on_the_resource_allows_the_call() -> None:
    decision = evaluate(
        [policy(allow("s3:GetObject", f"{BUCKET}/datasets/*"))],
        AuthorizationRequest.of("s3:GetObject", f"{BUCKET}/datasets/a/manifest.json"),
    )

    assert decision.allowed
    assert [ref.index for ref in decision.matched] == [0]


def test_a_call_no_statement_allows_is_implicitly_denied() -> None:
    decision = evaluate(
        [policy(allow("s3:GetObject", f"{BUCKET}/datasets/*"))],
        AuthorizationRequest.of("s3:GetObject", f"{BUCKET}/models/model.tar.gz"),
    )

    assert (decision.allowed, decision.reason) == (False, "no statement allows it")


def test_an_explicit_deny_wins_over_an_allow_in_another_policy() -> None:
    policies = [policy(allow("ec2:*", "*")), policy(deny("ec2:CreateNetworkInterface", "*"))]

    decision = evaluate(policies, AuthorizationRequest.of("ec2:CreateNetworkInterface", "*"))

    assert (decision.allowed, decision.reason) == (False, "explicit deny")


def test_actions_match_without_case_and_resources_with_it() -> None:
    policies = [policy(allow("S3:getobject", f"{BUCKET}/Models/*"))]

    assert evaluate(policies, AuthorizationRequest.of("s3:GetObject", f"{BUCKET}/Models/a")).allowed
    assert not evaluate(policies, AuthorizationRequest.of("s3:GetObject", f"{BUCKET}/models/a")).allowed


def test_a_question_mark_matches_one_character_and_dots_are_literal() -> None:
    policies = [policy(allow("logs:PutLogEvents", "arn:aws:logs:*:*:log-group:a.?"))]

    assert evaluate(
        policies, AuthorizationRequest.of("logs:PutLogEvents", "arn:aws:logs:r:1:log-group:a.b")
    ).allowed
    assert not evaluate(
        policies, AuthorizationRequest.of("logs:PutLogEvents", "arn:aws:logs:r:1:log-group:axb")
    ).allowed


def test_string_like_on_a_condition_key_limits_the_grant() -> None:
    policies = [policy(allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["code/*"]}}))]

    listed = evaluate(policies, AuthorizationRequest.of("s3:ListBucket", BUCKET, {"s3:prefix": "code/v1/"}))
    other = evaluate(policies, AuthorizationRequest.of("s3:ListBucket", BUCKET, {"s3:prefix": "datasets/"}))
    unprefixed = evaluate(policies, AuthorizationRequest.of("s3:ListBucket", BUCKET))

    assert (listed.allowed, other.allowed, unprefixed.allowed) == (True, False, False)


def test_an_allow_whose_condition_fails_leaves_another_allow_to_decide() -> None:
    policies = [
        policy(
            allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["code/*"]}}),
            allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["datasets/*"]}}),
        )
    ]

    decision = evaluate(
        policies, AuthorizationRequest.of("s3:ListBucket", BUCKET, {"s3:prefix": "datasets/a/"})
    )

    assert decision.allowed


def test_negated_and_if_exists_operators_hold_when_the_key_is_missing() -> None:
    negated = [policy(allow("sns:Publish", "*", Condition={"StringNotEquals": {"aws:SourceAccount": "1"}}))]
    if_exists = [
        policy(allow("sns:Publish", "*", Condition={"StringEqualsIfExists": {"aws:SourceAccount": "1"}}))
    ]
    plain = [policy(allow("sns:Publish", "*", Condition={"StringEquals": {"aws:SourceAccount": "1"}}))]
    request = AuthorizationRequest.of("sns:Publish", "arn:aws:sns:r:1:t")

    assert [evaluate(p, request).allowed for p in (negated, if_exists, plain)] == [True, True, False]


def test_pass_role_needs_the_service_it_is_passed_to() -> None:
    role = "arn:aws:iam::123456789012:role/jobs"
    policies = [
        policy(
            allow(
                "iam:PassRole",
                role,
                Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
    ]

    to_sagemaker = AuthorizationRequest.of(
        "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}
    )
    to_ec2 = AuthorizationRequest.of("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})

    assert (evaluate(policies, to_sagemaker).allowed, evaluate(policies, to_ec2).allowed) == (True, False)


def test_an_operator_it_does_not_implement_is_an_error_not_a_pass() -> None:
    policies = [
        policy(allow("s3:GetObject", "*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020"}}))
    ]

    with pytest.raises(UnsupportedCondition):
        evaluate(
            policies, AuthorizationRequest.of("s3:GetObject", f"{BUCKET}/a", {"aws:CurrentTime": "2030"})
        )


CONDITION_FREE = [
    [allow("s3:GetObject", f"{BUCKET}/datasets/*")],
    [allow(["s3:GetObject", "s3:PutObject"], [f"{BUCKET}/models/*", f"{BUCKET}/checkpoints/*"])],
    [allow("s3:*", "*"), deny("s3:DeleteObject", f"{BUCKET}/*")],
    [allow("sagemaker:CreateTrainingJob", "arn:aws:sagemaker:us-east-1:1:training-job/hpo-*")],
]
REQUESTS = [
    AuthorizationRequest.of("s3:GetObject", f"{BUCKET}/datasets/a.jpg"),
    AuthorizationRequest.of("s3:PutObject", f"{BUCKET}/models/m.tar.gz"),
    AuthorizationRequest.of("s3:DeleteObject", f"{BUCKET}/checkpoints/c"),
    AuthorizationRequest.of(
        "sagemaker:CreateTrainingJob", "arn:aws:sagemaker:us-east-1:1:training-job/hpo-x"
    ),
    AuthorizationRequest.of(
        "sagemaker:CreateTrainingJob", "arn:aws:sagemaker:us-east-1:1:training-job/train-x"
    ),
]


@pytest.mark.parametrize("statements", CONDITION_FREE)
@pytest.mark.parametrize("request_", REQUESTS, ids=str)
def test_without_conditions_it_agrees_with_motos_evaluator(
    statements: list[dict[str, Any]], request_: AuthorizationRequest
) -> None:
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    moto_result = IAMPolicy(document).is_action_permitted(request_.action, request_.resource)

    decision = evaluate([Policy.parse("p", json.loads(document))], request_)

    expected = {PermissionResult.PERMITTED: "allowed", PermissionResult.DENIED: "explicit deny"}
    assert decision.reason == expected.get(moto_result, "no statement allows it")


def test_moto_ignores_string_like_which_is_why_it_is_not_the_verdict() -> None:
    # The gap this module exists for (moto 5.2.5): a StringLike condition that does not match.
    document = {
        "Version": "2012-10-17",
        "Statement": [allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["code/*"]}})],
    }
    context = {"s3:prefix": "datasets/"}

    moto_result = IAMPolicy(json.dumps(document)).is_action_permitted("s3:ListBucket", BUCKET, None, context)
    decision = evaluate(
        [Policy.parse("p", document)], AuthorizationRequest.of("s3:ListBucket", BUCKET, context)
    )

    assert (moto_result, decision.allowed) == (PermissionResult.PERMITTED, False)
