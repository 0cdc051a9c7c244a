"""template.yaml, as the source of truth for the inference functions: least-privilege IAM, handler
wiring, the functions' environment, API throttling and binary media, the S3 trigger with retries and
a dead-letter queue, provisioned concurrency only behind a condition."""

from __future__ import annotations

from typing import Any

import pytest
from prediction.settings import ENV_VARS, Settings, SettingsError

from dogbreed import FUNCTIONS_DIR
from tests.template_loader import load_template

FUNCTIONS = {
    "PredictApiFunction": "predict_api.app.lambda_handler",
    "PredictS3Function": "predict_s3.app.lambda_handler",
}
REQUIRED_ENV = {var for var, field in ENV_VARS.items() if Settings.model_fields[field].is_required()}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(policy["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Wildcards, FullAccess and Resource "*" are asserted stack-wide in tests/security/test_template_security.py.
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_role_is_generated_from_its_policies(template: dict[str, Any], name: str) -> None:
    function = template["Resources"][name]
    assert "Role" not in function["Properties"], "the function's role is generated from its Policies"
    assert statements(function), "the function's permissions are its own inline statements"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_invoke_endpoint_is_scoped_to_the_one_endpoint(template: dict[str, Any], name: str) -> None:
    invoke = [
        s
        for s in statements(template["Resources"][name])
        if "sagemaker:InvokeEndpoint" in as_list(s["Action"])
    ]

    assert len(invoke) == 1
    [resource] = as_list(invoke[0]["Resource"])
    assert resource == {
        "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${EndpointName}"
    }
    assert template["Parameters"]["EndpointName"]["AllowedPattern"].startswith("^[a-z0-9]")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_s3_and_dynamodb_access_is_scoped(template: dict[str, Any], name: str) -> None:
    for statement in statements(template["Resources"][name]):
        actions = as_list(statement["Action"])
        for resource in as_list(statement["Resource"]):
            if any(a.startswith("s3:") for a in actions):
                text = str(resource)
                assert "InferenceBucket" in text, statement
                if "s3:PutObject" in actions:
                    assert "/results/" in text or "/rejected/" in text, statement
            if any(a.startswith("dynamodb:") for a in actions):
                assert resource in (
                    {"Fn::GetAtt": ["PredictionsTable", "Arn"]},
                    {"Fn::GetAtt": ["IdempotencyTable", "Arn"]},
                )


@pytest.mark.parametrize(("name", "handler"), sorted(FUNCTIONS.items()))
def test_functions_are_wired_to_the_shared_code(template: dict[str, Any], name: str, handler: str) -> None:
    properties = template["Resources"][name]["Properties"]

    assert properties["CodeUri"] == "functions/"
    assert properties["Handler"] == handler
    assert properties["AutoPublishAlias"] == "live"
    module_path = FUNCTIONS_DIR / (handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
    assert "def lambda_handler(" in module_path.read_text()
    assert set(properties["Environment"]["Variables"]) >= REQUIRED_ENV
    assert set(properties["Environment"]["Variables"]) <= set(ENV_VARS)
    # The local cloud's loopback-URL switch would open the SSRF guard to 127.0.0.1 (the Lambda
    # runtime API); it must never be part of a deployed function's environment.
    assert "LOCAL_CLOUD_ALLOW_LOOPBACK_URLS" not in properties["Environment"]["Variables"]
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"


def test_provisioned_concurrency_is_behind_a_condition(template: dict[str, Any]) -> None:
    properties = template["Resources"]["PredictApiFunction"]["Properties"]
    condition, when_on, when_off = properties["ProvisionedConcurrencyConfig"]["Fn::If"]

    assert condition in template["Conditions"]
    assert when_on == {"ProvisionedConcurrentExecutions": {"Ref": "ApiProvisionedConcurrency"}}
    assert when_off == {"Ref": "AWS::NoValue"}


def test_api_has_binary_media_types_cors_and_the_routes(template: dict[str, Any]) -> None:
    api = template["Resources"]["PredictionApi"]["Properties"]

    assert {"image~1jpeg", "image~1png", "application~1x-image", "application~1octet-stream"} <= set(
        api["BinaryMediaTypes"]
    )
    assert api["Cors"]["AllowOrigin"] == {"Fn::Sub": "'${CorsAllowOrigin}'"}
    events = template["Resources"]["PredictApiFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events.values()}
    assert routes == {
        ("POST", "/predictions"),
        ("GET", "/predictions/{prediction_id}"),
        ("GET", "/health"),
        ("GET", "/openapi.json"),
    }


def test_s3_trigger_filters_incoming_and_ends_in_a_dead_letter_queue(template: dict[str, Any]) -> None:
    properties = template["Resources"]["PredictS3Function"]["Properties"]
    [event] = properties["Events"].values()

    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "InferenceBucket"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "incoming/"}]
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] > 0
    dlq = {"Fn::GetAtt": ["PredictS3DeadLetterQueue", "Arn"]}
    assert event["Properties"]["DeadLetterConfig"]["Arn"] == dlq
    on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": dlq}
    assert 0 < properties["EventInvokeConfig"]["MaximumRetryAttempts"] <= 2
    bucket = template["Resources"]["InferenceBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def test_tables_match_what_the_code_writes(template: dict[str, Any]) -> None:
    predictions = template["Resources"]["PredictionsTable"]["Properties"]
    idempotency = template["Resources"]["IdempotencyTable"]["Properties"]

    assert predictions["KeySchema"] == [{"AttributeName": "prediction_id", "KeyType": "HASH"}]
    assert predictions["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert idempotency["TimeToLiveSpecification"]["AttributeName"] == "expiration"


def test_settings_fail_at_init_naming_the_missing_variable() -> None:
    with pytest.raises(SettingsError, match="ENDPOINT_NAME is missing"):
        Settings.from_env({"RESULTS_BUCKET": "b-u-c", "PREDICTIONS_TABLE": "p-t", "IDEMPOTENCY_TABLE": "i-t"})
    with pytest.raises(SettingsError, match="MAX_IMAGE_BYTES"):
        Settings.from_env(
            {
                "ENDPOINT_NAME": "e",
                "RESULTS_BUCKET": "b-u-c",
                "PREDICTIONS_TABLE": "p-t",
                "IDEMPOTENCY_TABLE": "i-t",
                "MAX_IMAGE_BYTES": "lots",
            }
        )
    parsed = Settings.from_env(
        {
            "ENDPOINT_NAME": "e",
            "RESULTS_BUCKET": "b-u-c",
            "PREDICTIONS_TABLE": "p-t",
            "IDEMPOTENCY_TABLE": "i-t",
            "ALLOWED_S3_BUCKETS": " a-b-c , d-e-f ,",
        }
    )
    assert parsed.allowed_s3_buckets == ("a-b-c", "d-e-f")
