"""The moto shim fails loudly when moto's internals change, and each patch does its one job."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import moto
import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.utils import camel_to_snake_case

from dogbreed.local import moto_shim, sfn_jsonata, sfn_moto_fixes, sfn_task_services


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == moto_shim.MOTO_VERSION


def test_every_moto_internal_the_shim_relies_on_is_still_there() -> None:
    assert moto_shim.check_moto_internals() == []


def test_moto_still_lacks_sagemaker_integrations() -> None:
    # If moto starts answering sagemaker itself, the shim's dispatch must be re-checked.
    assert "sagemaker" in state_task_service_factory._UNSUPPORTED_SERVICE_NAMES


def test_install_patches_the_task_factory_and_the_context_and_uninstall_restores_them() -> None:
    original_factory = state_task_factory.state_task_service_for
    original_env = execution_worker.ExecutionWorker._get_evaluation_environment
    with moto_shim.installed(None):
        assert moto_shim.is_installed()
        assert isinstance(
            state_task_factory.state_task_service_for("sagemaker"), sfn_task_services.SageMakerTaskService
        )
        assert isinstance(
            state_task_factory.state_task_service_for("aws-sdk"), sfn_task_services.AwsSdkTaskService
        )
        assert isinstance(state_task_factory.state_task_service_for("lambda"), moto_shim.LambdaTaskService)
        assert isinstance(
            state_task_factory.state_task_service_for("dynamodb"), sfn_task_services.DynamoDbTaskService
        )
        assert execution_worker.ExecutionWorker._get_evaluation_environment is not original_env
    assert state_task_factory.state_task_service_for is original_factory
    assert execution_worker.ExecutionWorker._get_evaluation_environment is original_env


def _moto_base(cls: type) -> Any:
    """The moto task service class a shim class extends (the first moto class in its MRO)."""
    return next(base for base in cls.__mro__[1:] if base.__module__.startswith("moto."))


def test_the_task_hooks_the_shim_overrides_keep_their_signatures() -> None:
    expected = ["self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"]
    for cls in (
        sfn_task_services.SageMakerTaskService,
        sfn_task_services.AwsSdkTaskService,
        moto_shim.LambdaTaskService,
    ):
        base = _moto_base(cls)
        assert list(inspect.signature(base._eval_service_task).parameters) == expected, base
    for service in (
        sfn_task_services.SageMakerTaskService,
        sfn_task_services.AwsSdkTaskService,
        sfn_task_services.DynamoDbTaskService,
    ):
        base = _moto_base(service)
        assert list(inspect.signature(base._from_error).parameters) == ["self", "env", "ex"], base


def test_applicationautoscaling_maps_to_the_boto3_service_name() -> None:
    assert sfn_task_services.AWS_SDK_SERVICE_NAMES["applicationautoscaling"] == "application-autoscaling"


@pytest.mark.parametrize(
    ("resource", "code", "name"),
    [
        # SDK integrations: modelled errors by name, the rest as the SDK's base exception
        (
            "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
            "ValidationException",
            "SageMaker.SageMakerException",
        ),
        (
            "arn:aws:states:::aws-sdk:sagemaker:stopTrainingJob",
            "ResourceNotFound",
            "SageMaker.ResourceNotFoundException",
        ),
        (
            "arn:aws:states:::aws-sdk:sagemaker:listEndpoints",
            "ThrottlingException",
            "SageMaker.SageMakerException",
        ),
        (
            "arn:aws:states:::aws-sdk:applicationautoscaling:registerScalableTarget",
            "ConcurrentUpdateException",
            "ApplicationAutoScaling.ConcurrentUpdateException",
        ),
        # optimized integrations: the classic SDK's base exception for unmodelled errors
        (
            "arn:aws:states:::sagemaker:createModel",
            "ValidationException",
            "SageMaker.AmazonSageMakerException",
        ),
        (
            "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "ResourceInUse",
            "SageMaker.ResourceInUseException",
        ),
        (
            "arn:aws:states:::dynamodb:putItem",
            "ConditionalCheckFailedException",
            "DynamoDB.ConditionalCheckFailedException",
        ),
        ("arn:aws:states:::dynamodb:putItem", "SomethingNew", "DynamoDB.AmazonDynamoDBException"),
    ],
)
def test_task_errors_are_named_as_step_functions_names_them(resource: str, code: str, name: str) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "Operation")
    assert sfn_task_services.task_error_name(resource, error) == name


def test_the_jsonata_evaluator_answers_what_the_pipeline_relies_on() -> None:
    sfn_jsonata.install()
    sfn_jsonata.self_check()


def test_context_timestamps_use_the_aws_format() -> None:
    moment = dt.datetime(2026, 11, 22, 2, 34, 46, 123456, tzinfo=dt.UTC)
    assert sfn_moto_fixes.iso_timestamp(moment) == "2026-11-22T02:34:46.123Z"


def test_the_lambda_task_and_invoke_api_are_the_local_runtimes_hooks() -> None:
    # The Lambda hooks live with the local Lambda runtime (their behaviour: tests/integration/
    # test_lambda_runtime.py); installing the shim plugs them in and uninstalling takes them out.
    from moto.awslambda.responses import LambdaResponse

    from dogbreed.local.lambda_runtime import moto_hooks

    original = LambdaResponse.invoke
    with moto_shim.installed(None):
        assert moto_shim.LambdaTaskService is moto_hooks.LambdaTaskService
        assert LambdaResponse.invoke is not original
    assert LambdaResponse.invoke is original


def test_every_sagemaker_operation_the_pipeline_calls_is_answered_locally() -> None:
    # The local SageMaker answers jobs, models and endpoints; moto's SageMaker the model registry.
    from moto.sagemaker.responses import SageMakerResponse

    from dogbreed.aws import stepfunctions as sfn_rules
    from dogbreed.local.sagemaker.backend import LocalSageMaker
    from dogbreed.pipeline.asl import task_states

    for name, state in task_states():
        integration = sfn_rules.parse_resource(state["Resource"])
        if integration.service != "sagemaker":
            continue
        method = camel_to_snake_case(integration.action)
        assert callable(getattr(LocalSageMaker, method, None)) or callable(
            getattr(SageMakerResponse, method, None)
        ), name
