"""Run the real training pipeline (statemachine/training_pipeline.asl.json) on moto's Step Functions
interpreter: the SageMaker task integrations, the `applicationautoscaling` SDK service name and
the Lambda task integration answered by the local Lambda runtime, which moto 5.2.5 lacks.

Pinned to moto==5.2.5: importing this module with another moto fails, and `check_moto_internals()`
(run by `install`, and by tests/unit/test_pipeline_moto_shim.py) names every moto internal it
relies on, so a moto upgrade fails loudly instead of quietly running something else.

What it patches (one dispatch point, `state_task_factory.state_task_service_for`):

- `arn:aws:states:::sagemaker:<action>[.sync]` (optimized integrations: createTrainingJob(.sync),
  createHyperParameterTuningJob(.sync), createTransformJob(.sync), createModel, createEndpointConfig,
  createEndpoint, updateEndpoint) -> the plugged-in `SageMakerBackend`. `.sync` polls `describe_*`
  until the job is Completed (the describe output is the task result, as on AWS) or Failed/Stopped
  (`States.TaskFailed`, the describe output as the cause).
- `arn:aws:states:::aws-sdk:sagemaker:<action>` (describeEndpoint, describeTrainingJob,
  stopTrainingJob, stopHyperParameterTuningJob, ...) -> the same backend, method `<action>` in
  snake_case; an action the backend does not implement (the model registry's) goes to moto's own
  SageMaker, like every other SDK integration.
- Task errors of every service are named by `dogbreed.aws.stepfunctions.error_name`, the rule the
  contract checks also use: `SageMaker.ResourceNotFoundException` for modelled errors;
  `SageMaker.SageMakerException` (SDK integrations) or `SageMaker.AmazonSageMakerException`
  (optimized integrations) for the rest, e.g. DescribeEndpoint's "Could not find endpoint".
- JSONata: `dogbreed.local.sfn_jsonata` plugs an evaluator into moto's empty hook.
- SendTaskFailure keeps its `cause` (moto's response layer drops it).
- String literals in the definition are JSON strings: moto's ASL preprocessor keeps the escapes of
  some of them as written (an `Assign` value "\\b" stayed two characters), so
  `sfn_moto_fixes.inner_string_of` decodes them as JSON, as Step Functions does.
- `arn:aws:states:::aws-sdk:applicationautoscaling:<action>` -> moto's `application-autoscaling`
  backend (moto looks the service up by the SDK name, which differs).
- `$$.Execution.StartTime` is an ISO-8601 string as on AWS (moto hands the context a datetime,
  which breaks intrinsic functions and DynamoDB string attributes built from it).
- `arn:aws:states:::lambda:invoke` and the Lambda `Invoke` API of the functions the plugged-in
  `LambdaRuntime` has -> that runtime (worker processes; see `dogbreed.local.lambda_runtime.moto_hooks`,
  which holds those hooks and their moto checks). Other functions go to moto.

The task services (SageMaker, aws-sdk, DynamoDB) and their error naming live in
`dogbreed.local.sfn_task_services`, the context, SendTaskFailure and string-literal fixes in
`dogbreed.local.sfn_moto_fixes`; this module checks moto's internals, then installs them all.

The backend interface (`sfn_task_services.SageMakerBackend`) mirrors boto3: every method takes
boto3's keyword arguments and returns boto3's response dict; errors are
`botocore.exceptions.ClientError` with SageMaker's error codes.
`dogbreed.local.sagemaker.backend.LocalSageMaker` (real processes) and the tests' in-memory double
both implement it:

    from dogbreed.local import moto_shim
    with moto_shim.installed(backend, lambdas=LambdaRuntime(...)):
        ... start executions on moto's stepfunctions (execute_state_machine enabled) ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import moto

from dogbreed.local import sfn_jsonata

MOTO_VERSION: Final = "5.2.5"
if moto.__version__ != MOTO_VERSION:  # pragma: no cover - exercised only with another moto
    raise RuntimeError(
        f"dogbreed.local.moto_shim patches moto {MOTO_VERSION} internals but moto {moto.__version__} is "
        "installed; re-check the patches against the new moto source and update MOTO_VERSION."
    )


from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (  # noqa: E402
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (  # noqa: E402
    state_task_service_aws_sdk,
    state_task_service_callback,
    state_task_service_dynamodb,
    state_task_service_factory,
)
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor  # noqa: E402
from moto.stepfunctions.parser.backend import execution_worker  # noqa: E402
from moto.stepfunctions.parser.models import StepFunctionsParserBackend  # noqa: E402
from moto.stepfunctions.responses import StepFunctionResponse  # noqa: E402

from dogbreed.local.lambda_runtime import moto_hooks  # noqa: E402
from dogbreed.local.lambda_runtime.moto_hooks import LambdaTaskService  # noqa: E402
from dogbreed.local.sfn_moto_fixes import (  # noqa: E402
    ORIGINAL_EVALUATION_ENVIRONMENT,
    ORIGINAL_INNER_STRING_OF,
    ORIGINAL_SEND_TASK_FAILURE,
    evaluation_environment,
    inner_string_of,
    send_task_failure,
)
from dogbreed.local.sfn_task_services import (  # noqa: E402
    AwsSdkTaskService,
    DynamoDbTaskService,
    SageMakerBackend,
    SageMakerTaskService,
    ShimError,
    use_backend,
)

if TYPE_CHECKING:
    from dogbreed.local.lambda_runtime.runtime import LambdaRuntime


_ORIGINAL_FACTORY: Final = state_task_service_factory.state_task_service_for
_SHIM_SERVICES: Final[dict[str, Callable[[], Any]]] = {
    "sagemaker": SageMakerTaskService,
    "aws-sdk": AwsSdkTaskService,
    "dynamodb": DynamoDbTaskService,
    "lambda": LambdaTaskService,
}


def _state_task_service_for(service_name: str) -> Any:
    factory = _SHIM_SERVICES.get(service_name)
    return factory() if factory is not None else _ORIGINAL_FACTORY(service_name)


# --------------------------------------------------------------------------------------------
# Installing
# --------------------------------------------------------------------------------------------
def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def check_moto_internals() -> list[str]:
    """Every moto internal the shim relies on; returns the mismatches (empty when all is well)."""
    problems: list[str] = []
    factory = getattr(state_task_factory, "state_task_service_for", None)
    if factory not in (_ORIGINAL_FACTORY, _state_task_service_for):
        problems.append("state_task_factory.state_task_service_for is not the service factory any more")
    if _parameters(_ORIGINAL_FACTORY) != ["service_name"]:
        problems.append("state_task_service_for(service_name) changed its signature")
    if "sagemaker" not in getattr(state_task_service_factory, "_UNSUPPORTED_SERVICE_NAMES", set()):
        problems.append("moto now treats sagemaker as a supported service: re-check the shim against it")
    callback = state_task_service_callback.StateTaskServiceCallback
    task_args = ["env", "resource_runtime_part", "normalised_parameters", "state_credentials"]
    for cls in (callback, state_task_service_aws_sdk.StateTaskServiceAwsSdk):
        if _parameters(cls._eval_service_task)[1:] != task_args:
            problems.append(f"{cls.__name__}._eval_service_task{task_args} changed")
    for name in (
        "_build_sync_resolver",
        "_eval_sync",
        "_from_error",
        "_get_sfn_resource",
        "_get_sfn_resource_type",
    ):
        if not hasattr(callback, name):
            problems.append(f"StateTaskServiceCallback.{name} is gone")
    if _parameters(callback._build_sync_resolver)[1:] != task_args:
        problems.append("StateTaskServiceCallback._build_sync_resolver changed its signature")
    aws_sdk = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    if not hasattr(aws_sdk, "_get_boto_service_name"):
        problems.append("StateTaskServiceAwsSdk._get_boto_service_name is gone")
    if not hasattr(state_task_service_dynamodb.StateTaskServiceDynamoDB, "_from_error"):
        problems.append("StateTaskServiceDynamoDB._from_error is gone")
    problems.extend(sfn_jsonata.check_moto_internals())
    if StepFunctionResponse.send_task_failure not in (ORIGINAL_SEND_TASK_FAILURE, send_task_failure):
        problems.append("StepFunctionResponse.send_task_failure changed")
    if Preprocessor.__dict__.get("_inner_string_of").__func__ not in (  # type: ignore[union-attr]
        ORIGINAL_INNER_STRING_OF,
        inner_string_of,
    ):
        problems.append("Preprocessor._inner_string_of changed")
    if "cause" not in _parameters(StepFunctionsParserBackend.send_task_failure):
        problems.append("the parser backend's send_task_failure takes no cause any more")
    worker_env = getattr(execution_worker.ExecutionWorker, "_get_evaluation_environment", None)
    if worker_env not in (ORIGINAL_EVALUATION_ENVIRONMENT, evaluation_environment) or _parameters(
        worker_env
    ) != ["self"]:
        problems.append("ExecutionWorker._get_evaluation_environment(self) changed")
    if not hasattr(StatesErrorNameType, "StatesTaskFailed"):
        problems.append("StatesErrorNameType.StatesTaskFailed is gone")
    problems.extend(moto_hooks.check_moto_internals())
    return problems


def install(backend: SageMakerBackend | None, *, lambdas: LambdaRuntime | None = None) -> None:
    """Patch moto's interpreter (idempotent) and plug in `backend` and, when given, the Lambda
    runtime whose functions the Lambda task and the Invoke API run (kept when None)."""
    problems = check_moto_internals()
    if problems:
        raise ShimError("moto internals changed: " + "; ".join(problems))
    use_backend(backend)
    sfn_jsonata.install()
    state_task_factory.state_task_service_for = _state_task_service_for
    execution_worker.ExecutionWorker._get_evaluation_environment = evaluation_environment  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]
    Preprocessor._inner_string_of = staticmethod(inner_string_of)  # type: ignore[method-assign]
    moto_hooks.install()
    if lambdas is not None:
        moto_hooks.use_runtime(lambdas)


def uninstall() -> None:
    state_task_factory.state_task_service_for = _ORIGINAL_FACTORY
    execution_worker.ExecutionWorker._get_evaluation_environment = ORIGINAL_EVALUATION_ENVIRONMENT  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = ORIGINAL_SEND_TASK_FAILURE  # type: ignore[method-assign]
    Preprocessor._inner_string_of = staticmethod(ORIGINAL_INNER_STRING_OF)  # type: ignore[method-assign]
    moto_hooks.uninstall()
    use_backend(None)


def is_installed() -> bool:
    return state_task_factory.state_task_service_for is _state_task_service_for


@contextmanager
def installed(backend: SageMakerBackend | None, *, lambdas: LambdaRuntime | None = None) -> Iterator[None]:
    install(backend, lambdas=lambdas)
    try:
        yield
    finally:
        uninstall()
