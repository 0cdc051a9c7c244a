"""`dogbreed deploy --check` against stubbed AWS answers (botocore Stubber: every request and response
checked against botocore's models): each check says OK when the account gives what the environment
needs, RAISE or FIX with the action when it does not, and UNVERIFIED with the reason when the account
cannot be asked."""

from __future__ import annotations

from typing import Any

import pytest

from dogbreed.preflight.account import Check, Status
from dogbreed.preflight.images import check_region, image_checks, image_uris
from dogbreed.preflight.lambda_concurrency import check_lambda_concurrency
from dogbreed.preflight.sagemaker_quotas import quota_checks, quota_needs
from dogbreed.preflight.stack_settings import (
    ORDERED_PARAMETERS,
    check_parameter_order,
    check_stack_name,
    check_template_rules,
    check_training_isolation,
)
from dogbreed.template_stack import TemplateStack
from tests.support.deploy_support import (
    DLC_REGISTRY,
    StubbedAccount,
    account_settings,
    image_details,
    quota,
)

TRAINING_TAG = "2.6.0-gpu-py312"
INFERENCE_TAG = "2.6.0-cpu-py312"


def _stack(env: str = "default", name: str = "dogbreed-dev", **parameters: str) -> TemplateStack:
    return TemplateStack.load(samconfig_env=env, parameters=parameters, stack_name=name)


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


# --- stack name and region -------------------------------------------------------------------------


def test_parameters_that_break_a_template_rule_are_named_before_the_deploy() -> None:
    canary_on_one = TemplateStack.load(
        parameters={"RolloutTrafficRouting": "CANARY", "EndpointMinInstances": "1"}
    )

    check = check_template_rules(canary_on_one)

    assert check.status is Status.FIX
    assert "GuardedRolloutNeedsTwoInstances" in check.action and "EndpointMinInstances" in check.action
    assert check_template_rules(TemplateStack.load()).status is Status.OK


def test_serverless_endpoints_are_held_to_their_own_rules() -> None:
    # A canary on a serverless endpoint shifts a share of its capacity: no instances are needed
    serverless_canary = TemplateStack.load(
        parameters={
            "EndpointType": "serverless",
            "RolloutTrafficRouting": "CANARY",
            "EndpointMinInstances": "1",
        }
    )
    # ... but Serverless Inference has no VPC configuration
    serverless_in_vpc = TemplateStack.load(
        parameters={
            "EndpointType": "serverless",
            "VpcSubnetIds": "subnet-0a1b",
            "VpcSecurityGroupIds": "sg-0e4f",
        }
    )

    assert check_template_rules(serverless_canary).status is Status.OK
    check = check_template_rules(serverless_in_vpc)
    assert check.status is Status.FIX
    assert "ServerlessEndpointOutsideVpc" in check.action


@pytest.mark.parametrize("pair", ORDERED_PARAMETERS, ids=lambda pair: pair.low)
def test_a_minimum_above_its_maximum_is_named_before_the_deploy(pair: Any) -> None:
    # Given the pair's low parameter one above its high one, where the pair applies
    applying = {"EndpointType": "instance", "UseSpotTraining": "true"}
    high = TemplateStack.load(parameters=applying).parameters[pair.high]
    swapped = TemplateStack.load(parameters={**applying, pair.low: str(float(high) + 1)})

    check = check_parameter_order(swapped)

    assert check.status is Status.FIX
    assert f"{pair.low} " in check.action and f"{pair.high} " in check.action


def test_pairs_are_checked_only_where_their_api_reads_them() -> None:
    # A serverless endpoint registers no instance counts; without spot there is no spot wait
    serverless = {"EndpointType": "serverless", "EndpointMinInstances": "3", "EndpointMaxInstances": "2"}
    on_demand = {"UseSpotTraining": "false", "MaxSpotWaitSeconds": "60"}

    assert check_parameter_order(TemplateStack.load(parameters=serverless)).status is Status.OK
    assert check_parameter_order(TemplateStack.load(parameters=on_demand)).status is Status.OK
    assert check_parameter_order(TemplateStack.load(parameters={"TuningEpochsMax": "x"})).status is Status.FIX


@pytest.mark.parametrize("env", ["default", "prod"])
def test_every_samconfig_environment_has_its_ranges_in_order(env: str) -> None:
    assert check_parameter_order(_stack(env)).status is Status.OK


def test_training_network_isolation_is_refused_while_the_code_comes_from_s3() -> None:
    isolated = check_training_isolation(
        TemplateStack.load(parameters={"EnableTrainingNetworkIsolation": "true"})
    )

    assert isolated.status is Status.FIX
    assert "EnableTrainingNetworkIsolation" in isolated.action and "from S3" in isolated.action
    assert check_training_isolation(TemplateStack.load()).status is Status.OK


def test_a_lowercase_stack_name_within_63_characters_passes() -> None:
    assert check_stack_name("dogbreed-dev").status is Status.OK


@pytest.mark.parametrize("name", ["DogBreed-dev", "d" * 64, "dogbreed_dev"])
def test_a_name_sagemaker_cannot_take_must_be_fixed(name: str) -> None:
    check = check_stack_name(name)

    assert check.status is Status.FIX
    assert "--stack NAME" in check.action


def test_a_region_outside_the_dlc_mapping_must_be_fixed() -> None:
    # Given a region the template's DlcRegistry mapping does not cover
    check = check_region(_stack(), "xx-nowhere-1")

    assert check.status is Status.FIX
    assert "TrainingImageUri" in check.action


def test_the_images_are_the_templates_for_the_region_and_its_partition() -> None:
    uris = image_uris(_stack(), "cn-north-1")

    assert uris["training image"] == (
        f"727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:{TRAINING_TAG}"
    )
    assert uris["inference image"].endswith(f"/pytorch-inference:{INFERENCE_TAG}")


# --- images ----------------------------------------------------------------------------------------


def _describe(repository: str, tag: str) -> dict[str, Any]:
    return {"registryId": DLC_REGISTRY, "repositoryName": repository, "imageIds": [{"imageTag": tag}]}


def test_images_that_exist_in_the_dlc_registry_pass() -> None:
    stubbed = StubbedAccount()
    ecr = stubbed.stub("ecr")
    for repository, tag in (("pytorch-training", TRAINING_TAG), ("pytorch-inference", INFERENCE_TAG)):
        ecr.add_response("describe_images", image_details(repository, tag), _describe(repository, tag))

    with stubbed.active():
        checks = list(image_checks(_stack(), stubbed.account))

    assert [check.status for check in checks] == [Status.OK, Status.OK]
    assert checks[0].value == f"{DLC_REGISTRY}/pytorch-training:{TRAINING_TAG}"


def test_a_missing_image_tag_must_be_fixed() -> None:
    stubbed = StubbedAccount()
    ecr = stubbed.stub("ecr")
    ecr.add_client_error("describe_images", "ImageNotFoundException", "no such tag", 400)
    ecr.add_response("describe_images", image_details("pytorch-inference", INFERENCE_TAG))

    with stubbed.active():
        checks = _by_name(list(image_checks(_stack(), stubbed.account)))

    assert checks["training image"].status is Status.FIX
    assert "does not exist" in checks["training image"].action
    assert checks["inference image"].status is Status.OK


def test_an_image_pull_answers_when_describe_images_is_denied() -> None:
    stubbed = StubbedAccount()
    ecr = stubbed.stub("ecr")
    for repository, tag in (("pytorch-training", TRAINING_TAG), ("pytorch-inference", INFERENCE_TAG)):
        ecr.add_client_error("describe_images", "AccessDeniedException", "not authorized", 400)
        ecr.add_response(
            "batch_get_image",
            {
                "images": [
                    {"registryId": DLC_REGISTRY, "repositoryName": repository, "imageId": {"imageTag": tag}}
                ]
            },
            _describe(repository, tag),
        )

    with stubbed.active():
        checks = list(image_checks(_stack(), stubbed.account))

    assert [check.status for check in checks] == [Status.OK, Status.OK]


def test_images_are_unverified_when_no_ecr_call_is_allowed() -> None:
    stubbed = StubbedAccount()
    ecr = stubbed.stub("ecr")
    for _ in range(2):
        ecr.add_client_error("describe_images", "AccessDeniedException", "not authorized", 400)
        ecr.add_client_error("batch_get_image", "AccessDeniedException", "not authorized", 400)

    with stubbed.active():
        checks = list(image_checks(_stack(), stubbed.account))

    assert [check.status for check in checks] == [Status.UNVERIFIED, Status.UNVERIFIED]
    assert checks[0].action == "not verifiable with your credentials (ecr:BatchGetImage denied)"


# --- Lambda concurrency ----------------------------------------------------------------------------

RESERVED = {"ApiProvisionedConcurrency": "2", "ApiReservedConcurrency": "50", "S3ReservedConcurrency": "10"}


def _lambda_account(limit: int, unreserved: int) -> StubbedAccount:
    stubbed = StubbedAccount()
    stubbed.stub("lambda").add_response("get_account_settings", account_settings(limit, unreserved), {})
    stubbed.stub("cloudformation").add_client_error(
        "list_stack_resources", "ValidationError", "Stack with id dogbreed-prod does not exist", 400
    )
    return stubbed


def test_reserved_concurrency_within_the_unreserved_pool_passes() -> None:
    stubbed = _lambda_account(limit=1000, unreserved=1000)

    with stubbed.active():
        [check] = check_lambda_concurrency(_stack("prod", "dogbreed-prod", **RESERVED), stubbed.account)

    assert check.status is Status.OK
    # the API's 2 provisioned are part of its 50 reserved: 50 + 10 + the 100 Lambda keeps
    assert check.needed == "60 for the stack + 100 unreserved = 160"


def test_a_new_accounts_concurrency_limit_must_be_raised() -> None:
    # Given a new account's reduced limit and prod's reservations
    stubbed = _lambda_account(limit=50, unreserved=50)

    with stubbed.active():
        [check] = check_lambda_concurrency(_stack("prod", "dogbreed-prod", **RESERVED), stubbed.account)

    assert check.status is Status.RAISE
    assert "'Concurrent executions' (AWS Lambda, Service Quotas) >= 160" in check.action


def test_what_the_deployed_stack_reserves_already_counts_as_available() -> None:
    # Given prod deployed with its reservations: they are already out of the unreserved pool
    stubbed = StubbedAccount()
    stubbed.stub("lambda").add_response("get_account_settings", account_settings(220, 160), {})
    stubbed.stub("cloudformation").add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": logical_id,
                    "PhysicalResourceId": name,
                    "ResourceType": "AWS::Lambda::Function",
                    "LastUpdatedTimestamp": "2025-01-01T00:00:00Z",
                    "ResourceStatus": "UPDATE_COMPLETE",
                }
                for logical_id, name in (("PredictApiFunction", "api-fn"), ("PredictS3Function", "s3-fn"))
            ]
        },
        {"StackName": "dogbreed-prod"},
    )
    stubbed.stub("lambda").add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 50})
    stubbed.stub("lambda").add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 10})

    with stubbed.active():
        [check] = check_lambda_concurrency(_stack("prod", "dogbreed-prod", **RESERVED), stubbed.account)

    assert check.status is Status.OK
    assert check.value == "160 unreserved of 220 (+60 this stack holds)"


def test_no_reservation_needs_nothing_from_the_account() -> None:
    with StubbedAccount().active() as stubbed:
        [check] = check_lambda_concurrency(_stack("prod", "dogbreed-prod"), stubbed.account)

    assert check.status is Status.OK


def test_provisioned_above_reserved_concurrency_must_be_fixed() -> None:
    stubbed = _lambda_account(limit=1000, unreserved=1000)
    parameters = {"ApiProvisionedConcurrency": "20", "ApiReservedConcurrency": "10"}

    with stubbed.active():
        checks = _by_name(
            check_lambda_concurrency(_stack("prod", "dogbreed-prod", **parameters), stubbed.account)
        )

    assert checks["PredictApiFunction provisioned"].status is Status.FIX


# --- SageMaker quotas ------------------------------------------------------------------------------

SPOT_G4DN = "ml.g4dn.xlarge for spot training job usage"
ENDPOINT_M5 = "ml.m5.large for endpoint usage"


def test_dev_needs_spot_trials_at_once_and_the_endpoint_with_room_for_an_update() -> None:
    needs = {need.quota: need.count for need in quota_needs(_stack().parameters)}

    # dev: 2 trials at once on spot, no final job (ReuseTuningArtifact), 1 endpoint instance
    assert needs == {SPOT_G4DN: 2, ENDPOINT_M5: 2}


def test_a_serverless_endpoint_needs_no_endpoint_instances() -> None:
    needs = {need.quota: need.count for need in quota_needs(_stack(EndpointType="serverless").parameters)}

    assert needs == {SPOT_G4DN: 2}


def test_prods_final_job_and_trials_share_one_quota() -> None:
    needs = {need.quota: need.count for need in quota_needs(_stack("prod").parameters)}

    # prod: 4 trials at once, then a 2-instance final job on the same type; scaling to 8
    assert needs == {SPOT_G4DN: 4, ENDPOINT_M5: 8}


def _quota_account(defaults: list[dict[str, Any]], applied: list[dict[str, Any]]) -> StubbedAccount:
    stubbed = StubbedAccount()
    quotas = stubbed.stub("service-quotas")
    quotas.add_response("list_aws_default_service_quotas", {"Quotas": defaults}, {"ServiceCode": "sagemaker"})
    quotas.add_response("list_service_quotas", {"Quotas": applied}, {"ServiceCode": "sagemaker"})
    return stubbed


def test_applied_quotas_that_cover_the_need_pass() -> None:
    stubbed = _quota_account(
        [quota(SPOT_G4DN, "L-SPOTG4DN", 0), quota(ENDPOINT_M5, "L-ENDPTM5L", 4)],
        [quota(SPOT_G4DN, "L-SPOTG4DN", 2)],
    )

    with stubbed.active():
        checks = _by_name(quota_checks(_stack(), stubbed.account))

    assert checks[SPOT_G4DN].status is Status.OK and checks[SPOT_G4DN].value == "2 (applied)"
    assert checks[ENDPOINT_M5].status is Status.OK and checks[ENDPOINT_M5].value == "4 (AWS default)"


def test_a_quota_below_the_need_must_be_raised_with_its_code() -> None:
    # Given a new account: GPU spot training at its default of 0
    stubbed = _quota_account([quota(SPOT_G4DN, "L-SPOTG4DN", 0), quota(ENDPOINT_M5, "L-ENDPTM5L", 4)], [])

    with stubbed.active():
        checks = _by_name(quota_checks(_stack(), stubbed.account))

    assert checks[SPOT_G4DN].status is Status.RAISE
    assert "--quota-code L-SPOTG4DN --desired-value 2 --region us-east-1" in checks[SPOT_G4DN].action


def test_an_instance_type_without_a_quota_in_the_region_must_be_fixed() -> None:
    stubbed = _quota_account([quota(ENDPOINT_M5, "L-ENDPTM5L", 4)], [])

    with stubbed.active():
        checks = _by_name(quota_checks(_stack(), stubbed.account))

    assert checks[SPOT_G4DN].status is Status.FIX
    assert "TuningInstanceType" in checks[SPOT_G4DN].action


def test_quotas_are_unverified_when_service_quotas_is_denied() -> None:
    stubbed = StubbedAccount()
    stubbed.stub("service-quotas").add_client_error(
        "list_aws_default_service_quotas", "AccessDeniedException", "not authorized", 400
    )

    with stubbed.active():
        checks = quota_checks(_stack(), stubbed.account)

    assert {check.status for check in checks} == {Status.UNVERIFIED}
    assert checks[0].action == (
        "not verifiable with your credentials (servicequotas:ListAWSDefaultServiceQuotas denied)"
    )


def test_on_the_local_cloud_an_api_it_does_not_emulate_is_named() -> None:
    # Given the local cloud, whose Lambda answers GetAccountSettings with moto's 404
    stubbed = StubbedAccount(local=True)
    stubbed.stub("lambda").add_client_error("get_account_settings", "404", "Not yet implemented", 404)

    with stubbed.active():
        [check] = check_lambda_concurrency(_stack(S3ReservedConcurrency="4"), stubbed.account)

    assert check.status is Status.UNVERIFIED
    assert check.action == "not emulated by the local cloud (lambda:GetAccountSettings: 404)"
