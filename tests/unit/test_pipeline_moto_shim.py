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

from dogbreed.local import moto_shim


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
            state_task_factory.state_task_service_for("sagemaker"), moto_shim.SageMakerTaskService
        )
        assert isinstance(state_task_factory.state_task_service_for("aws-sdk"), moto_shim.AwsSdkTaskService)
        assert isinstance(state_task_factory.state_task_service_for("lambda"), moto_shim.LambdaTaskService)
        assert (
            type(state_task_factory.state_task_service_for("dynamodb")).__name__ == "StateTaskServiceDynamoDB"
        )
        assert execution_worker.ExecutionWorker._get_evaluation_environment is not original_env
    assert state_task_factory.state_task_service_for is original_factory
    assert execution_worker.ExecutionWorker._get_evaluation_environment is original_env


def test_the_task_hooks_the_shim_overrides_keep_their_signatures() -> None:
    expected = ["self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"]
    for cls in (moto_shim.SageMakerTaskService, moto_shim.AwsSdkTaskService, moto_shim.LambdaTaskService):
        base: Any = cls.__mro__[1]
        assert list(inspect.signature(base._eval_service_task).parameters) == expected, base


def test_applicationautoscaling_maps_to_the_boto3_service_name() -> None:
    assert moto_shim.AWS_SDK_SERVICE_NAMES["applicationautoscaling"] == "application-autoscaling"
    assert moto_shim.AwsSdkTaskService._normalise_service_error_name("applicationautoscaling") == (
        "ApplicationAutoScaling"
    )


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("ValidationException", "SageMaker.AmazonSageMakerException"),
        ("ResourceNotFound", "SageMaker.ResourceNotFoundException"),
        ("ResourceInUse", "SageMaker.ResourceInUseException"),
        ("ThrottlingException", "SageMaker.AmazonSageMakerException"),
    ],
)
def test_sagemaker_errors_are_named_as_step_functions_names_them(code: str, name: str) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "DescribeEndpoint")
    assert moto_shim.sagemaker_error_name(error) == name


def test_context_timestamps_use_the_aws_format() -> None:
    moment = dt.datetime(2026, 11, 22, 2, 34, 46, 123456, tzinfo=dt.UTC)
    assert moto_shim.iso_timestamp(moment) == "2026-11-22T02:34:46.123Z"


def test_in_process_lambda_reports_handler_errors_like_lambda(tmp_path) -> None:
    package = tmp_path / "shimfn_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(
        "import os\n"
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise KeyError('boom')\n"
        "    return {'seen': event['x'], 'env': os.environ['SHIM_TEST_VAR'], 'name': context.function_name}\n"
    )
    function = moto_shim.LambdaFunction(
        name="fn", code_dir=tmp_path, handler="shimfn_pkg.app.handler", environment={"SHIM_TEST_VAR": "v"}
    )
    assert moto_shim.invoke_lambda(function, {"x": 1}) == ({"seen": 1, "env": "v", "name": "fn"}, None)
    payload, error = moto_shim.invoke_lambda(function, {"fail": True})
    assert error == "Unhandled"
    assert payload["errorType"] == "KeyError"


def test_the_local_sagemaker_backend_offers_every_operation_the_pipeline_calls() -> None:
    backend_module = pytest.importorskip("dogbreed.local.sagemaker.backend")
    members = [name for name in dir(moto_shim.SageMakerBackend) if not name.startswith("_")]
    assert members
    for name in members:
        assert callable(getattr(backend_module.LocalSageMaker, name, None)), name
