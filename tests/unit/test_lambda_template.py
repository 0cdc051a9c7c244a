"""template.yaml, as the source of truth for the inference functions: least-privilege IAM, handler
wiring, the functions' environment, API throttling and binary media, the S3 trigger with retries and
a dead-letter queue, provisioned concurrency only behind a condition."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult
from prediction.result_store import api_result_key, result_key_for
from prediction.settings import ENV_VARS, Settings, SettingsError

from dogbreed import FUNCTIONS_DIR
from dogbreed.template_stack import TemplateStack
from tests.support.templates import as_list, identity_statements, load_template

# Function -> its CodeUri directory under functions/ (the handler only; shared code is the layer's).
FUNCTIONS = {
    "PredictApiFunction": "predict_api",
    "PredictS3Function": "predict_s3",
}
REQUIRED_ENV = {var for var, field in ENV_VARS.items() if Settings.model_fields[field].is_required()}
PERMITTED = PermissionResult.PERMITTED
TEMPLATE_TRANSFORMS = load_template()["Transform"]
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation request quota
# Headers (API Gateway REST: 10,240 bytes at most) twice over (headers and multiValueHeaders), the
# request context and the event's JSON: generously 64 KiB.
PROXY_EVENT_OVERHEAD_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [statement for lid, statement in identity_statements(template["Resources"]) if lid == name]


# Wildcards, FullAccess and Resource "*" are asserted stack-wide in tests/security/test_template_security.py.
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_role_is_generated_from_its_policies(template: dict[str, Any], name: str) -> None:
    function = template["Resources"][name]
    assert "Role" not in function["Properties"], "the function's role is generated from its Policies"
    assert statements(template, name), "the function's permissions are its own inline statements"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_invoke_endpoint_is_scoped_to_the_one_endpoint(template: dict[str, Any], name: str) -> None:
    invoke = [s for s in statements(template, name) if "sagemaker:InvokeEndpoint" in as_list(s["Action"])]

    assert len(invoke) == 1
    [resource] = as_list(invoke[0]["Resource"])
    endpoint = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${AWS::StackName}"
    assert resource == {"Fn::Sub": endpoint}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_s3_and_dynamodb_access_is_scoped(template: dict[str, Any], name: str) -> None:
    for statement in statements(template, name):
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


@pytest.mark.parametrize(("name", "directory"), sorted(FUNCTIONS.items()))
def test_functions_are_wired_to_their_handler_and_the_shared_layer(
    template: dict[str, Any], name: str, directory: str
) -> None:
    properties = template["Resources"][name]["Properties"]

    assert properties["CodeUri"] == f"functions/{directory}/"
    assert properties["Handler"] == "app.lambda_handler"
    assert {"Ref": "SharedCodeLayer"} in template["Globals"]["Function"]["Layers"]
    assert properties["AutoPublishAlias"] == "live"
    assert "def lambda_handler(" in (FUNCTIONS_DIR / directory / "app.py").read_text()
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


# --- after the deploy: what the stack does on AWS ------------------------------------------------


@functools.cache
def resolved_stack(stage: str) -> TemplateStack:
    return TemplateStack.load(parameters={"Stage": stage})


def function_policy(stack: TemplateStack, function: str) -> IAMPolicy:
    """The function's inline statements with every intrinsic resolved, as one IAM policy document."""
    found = stack.resolve({"Statements": statements(stack.template, function)})["Statements"]
    return IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": found}))


@pytest.mark.parametrize(
    ("function", "deleted_key"),
    [
        ("PredictApiFunction", api_result_key("0b6c3f1e-4a57-4c4b-9a0e-2f0c8f5b7d21")),
        ("PredictS3Function", result_key_for("2026/dog.jpg")),
    ],
)
def test_a_function_may_delete_the_orphaned_result_objects_it_writes(function: str, deleted_key: str) -> None:
    # Given the result key the store removes when the Predictions item could not be written
    stack = resolved_stack("dev")
    bucket = stack.physical_name("InferenceBucket")

    # Then the function's role allows exactly that delete, and no delete outside results/
    policy = function_policy(stack, function)
    assert policy.is_action_permitted("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{deleted_key}") == PERMITTED
    for other in ("incoming/2026/dog.jpg", "rejected/2026/dog.jpg.json", "datasets/x/manifest.json"):
        assert policy.is_action_permitted("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{other}") != PERMITTED


def test_the_api_function_may_not_delete_the_s3_functions_results() -> None:
    stack = resolved_stack("dev")
    bucket = stack.physical_name("InferenceBucket")
    policy = function_policy(stack, "PredictApiFunction")
    key = result_key_for("2026/dog.jpg")
    assert policy.is_action_permitted("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{key}") != PERMITTED


@pytest.mark.parametrize("bucket", ["DataBucket", "InferenceBucket"])
def test_dev_buckets_are_never_versioned_and_prod_buckets_are(bucket: str) -> None:
    # A suspended bucket still writes delete markers: dev leaves versioning unset altogether
    dev, prod = (resolved_stack(stage) for stage in ("dev", "prod"))
    assert "VersioningConfiguration" not in dev.resolve(dev.resources[bucket]["Properties"])
    assert prod.resolve(prod.resources[bucket]["Properties"])["VersioningConfiguration"] == {
        "Status": "Enabled"
    }


@pytest.mark.parametrize(
    "name", ["DataBucket", "InferenceBucket", "RunsTable", "PredictionsTable", "IdempotencyTable"]
)
def test_prod_retains_data_through_stack_deletion_and_replacement(name: str) -> None:
    for stage, policy in (("prod", "Retain"), ("dev", "Delete")):
        stack = resolved_stack(stage)
        resource = stack.resources[name]
        assert stack.resolve(resource["DeletionPolicy"]) == policy, (stage, name)
        assert stack.resolve(resource["UpdateReplacePolicy"]) == policy, (stage, name)
    # CloudFormation resolves intrinsic functions in these attributes only under this transform
    assert "AWS::LanguageExtensions" in TEMPLATE_TRANSFORMS


@pytest.mark.parametrize("table", ["RunsTable", "PredictionsTable", "IdempotencyTable"])
def test_prod_tables_have_deletion_protection(table: str) -> None:
    for stage, protected in (("prod", True), ("dev", False)):
        stack = resolved_stack(stage)
        assert stack.resolve(stack.resources[table]["Properties"])["DeletionProtectionEnabled"] is protected


def test_the_largest_accepted_image_fits_lambdas_synchronous_payload_base64_encoded() -> None:
    # A binary body reaches the function base64-encoded inside the proxy event (Lambda: "Request must
    # be smaller than 6291456 bytes"), with room left for headers (API Gateway: 10,240 bytes) and the
    # request context.
    largest = int(load_template()["Parameters"]["MaxImageBytes"]["MaxValue"])
    base64_size = 4 * math.ceil(largest / 3)
    assert base64_size + PROXY_EVENT_OVERHEAD_BYTES <= LAMBDA_SYNC_PAYLOAD_BYTES


def test_the_endpoints_log_group_is_the_one_sagemaker_writes_and_it_expires() -> None:
    stack = resolved_stack("dev")
    group = stack.resolve(stack.resources["EndpointLogGroup"]["Properties"])
    assert group["LogGroupName"] == f"/aws/sagemaker/Endpoints/{stack.stack_name}"
    assert group["RetentionInDays"] == stack.parameters["LogRetentionDays"]
