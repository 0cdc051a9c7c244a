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
  some of them as written (an `Assign` value "\\b" stayed two characters), so `_inner_string_of`
  decodes them as JSON, as Step Functions does.
- `arn:aws:states:::aws-sdk:applicationautoscaling:<action>` -> moto's `application-autoscaling`
  backend (moto looks the service up by the SDK name, which differs).
- `$$.Execution.StartTime` is an ISO-8601 string as on AWS (moto hands the context a datetime,
  which breaks intrinsic functions and DynamoDB string attributes built from it).
- `arn:aws:states:::lambda:invoke` and the Lambda `Invoke` API of the functions the plugged-in
  `LambdaRuntime` has -> that runtime (worker processes; see `dogbreed.local.lambda_runtime.moto_hooks`,
  which holds those hooks and their moto checks). Other functions go to moto.

The backend interface (`SageMakerBackend`) mirrors boto3: every method takes boto3's keyword
arguments and returns boto3's response dict; errors are `botocore.exceptions.ClientError` with
SageMaker's error codes. `dogbreed.local.sagemaker.backend.LocalSageMaker` (real processes) and the
tests' in-memory double both implement it:

    from dogbreed.local import moto_shim
    with moto_shim.installed(backend, lambdas=LambdaRuntime(...)):
        ... start executions on moto's stepfunctions (execute_state_machine enabled) ...
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, cast, runtime_checkable

import moto

from dogbreed.aws import stepfunctions as sfn_rules
from dogbreed.local import sfn_jsonata

MOTO_VERSION: Final = "5.2.5"
if moto.__version__ != MOTO_VERSION:  # pragma: no cover - exercised only with another moto
    raise RuntimeError(
        f"dogbreed.local.moto_shim patches moto {MOTO_VERSION} internals but moto {moto.__version__} is "
        "installed; re-check the patches against the new moto source and update MOTO_VERSION."
    )

from botocore.exceptions import ClientError  # noqa: E402
from moto.core.responses import EmptyResult  # noqa: E402
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (  # noqa: E402
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (  # noqa: E402
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (  # noqa: E402
    StatesErrorName,
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
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (  # noqa: E402
    ResourceCondition,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails  # noqa: E402
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor  # noqa: E402
from moto.stepfunctions.parser.backend import execution_worker  # noqa: E402
from moto.stepfunctions.parser.models import StepFunctionsParserBackend  # noqa: E402
from moto.stepfunctions.parser.utils import camel_to_snake_case  # noqa: E402
from moto.stepfunctions.responses import StepFunctionResponse  # noqa: E402

# --- Lambda: the local runtime's hooks (dogbreed.local.lambda_runtime owns them) --------------------
from dogbreed.local.lambda_runtime import moto_hooks  # noqa: E402
from dogbreed.local.lambda_runtime.moto_hooks import LambdaTaskService  # noqa: E402

if TYPE_CHECKING:
    from dogbreed.local.lambda_runtime.runtime import LambdaRuntime


class ShimError(RuntimeError):
    """moto's internals no longer look like the ones this shim was written against, or the shim
    was asked for something it does not answer."""


# --------------------------------------------------------------------------------------------
# The pluggable SageMaker backend
# --------------------------------------------------------------------------------------------
@runtime_checkable
class SageMakerBackend(Protocol):
    """boto3-shaped SageMaker operations (keyword arguments in, response dict out, `ClientError`
    with SageMaker's codes for errors). `.sync` completion is observed through `describe_*`:
    TrainingJobStatus / HyperParameterTuningJobStatus / TransformJobStatus InProgress|Stopping -> keep
    waiting, Completed -> task succeeds with the describe output, Failed|Stopped -> task fails."""

    def create_training_job(self, **request: Any) -> dict[str, Any]: ...
    def describe_training_job(self, **request: Any) -> dict[str, Any]: ...
    def stop_training_job(self, **request: Any) -> dict[str, Any]: ...
    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]: ...
    def describe_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]: ...
    def stop_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]: ...
    def create_model(self, **request: Any) -> dict[str, Any]: ...
    def create_endpoint_config(self, **request: Any) -> dict[str, Any]: ...
    def create_endpoint(self, **request: Any) -> dict[str, Any]: ...
    def update_endpoint(self, **request: Any) -> dict[str, Any]: ...
    def describe_endpoint(self, **request: Any) -> dict[str, Any]: ...


# Optimized integrations: SFN action -> (backend method, describe method for .sync, name key, status key)
_SYNC_JOBS: Final[dict[str, tuple[str, str, str]]] = {
    "createTrainingJob": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "createHyperParameterTuningJob": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
    ),
    "createTransformJob": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
}
OPTIMIZED_ACTIONS: Final[frozenset[str]] = frozenset(
    {*_SYNC_JOBS, "createModel", "createEndpointConfig", "createEndpoint", "updateEndpoint"}
)
_JOB_RUNNING: Final = frozenset({"InProgress", "Stopping"})
_JOB_FAILED: Final = frozenset({"Failed", "Stopped"})
# aws-sdk integration service names whose boto3 name differs.
AWS_SDK_SERVICE_NAMES: Final[dict[str, str]] = {"applicationautoscaling": "application-autoscaling"}


def task_error_name(resource: str, error: ClientError) -> str:
    """The Step Functions error name of a service error on the Task resource `resource`."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    return sfn_rules.error_name(sfn_rules.parse_resource(resource), code)


def _service_error_cause(task: Any, error: ClientError) -> str:
    details = error.response.get("Error", {})
    meta = error.response.get("ResponseMetadata", {})
    service = sfn_rules.parse_resource(task.resource.resource_arn).error_prefix
    return (
        f"{details.get('Message', '')} (Service: {service}, Status Code: {meta.get('HTTPStatusCode', 400)}, "
        f"Error Code: {details.get('Code', '')}, Request ID: {meta.get('RequestId', '')})"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_state_json(response: dict[str, Any]) -> dict[str, Any]:
    """What a task result looks like in a state: JSON only (timestamps as ISO strings)."""
    response = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    result: dict[str, Any] = json.loads(json.dumps(response, default=_json_default))
    return result


# --------------------------------------------------------------------------------------------
# The patched task states
# --------------------------------------------------------------------------------------------
@dataclass
class _ShimState:
    backend: SageMakerBackend | None = None

    def require_backend(self) -> SageMakerBackend:
        if self.backend is None:
            raise ShimError("no SageMaker backend is plugged in (moto_shim.install(backend))")
        return self.backend


_STATE = _ShimState()


def _service_failure_event(task: Any, env: Any, error: ClientError) -> FailureEvent:
    """A service's ClientError as the task failure Step Functions reports."""
    name = task_error_name(task.resource.resource_arn, error)
    return _task_failure(task, env, name, _service_error_cause(task, error)).failure_event


def _task_failure(task: Any, env: Any, error: str, cause: str) -> FailureEventException:
    error_name = (
        StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
        if error == StatesErrorNameType.StatesTaskFailed.to_name()
        else CustomErrorName(error)
    )
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=error_name,
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]
                taskFailedEventDetails=TaskFailedEventDetails(
                    resource=task._get_sfn_resource(),
                    resourceType=task._get_sfn_resource_type(),
                    error=error,
                    cause=cause,
                )
            ),
        )
    )


class SageMakerTaskService(state_task_service_callback.StateTaskServiceCallback):
    """`arn:aws:states:::sagemaker:<action>[.sync]` answered by the plugged-in backend."""

    def __init__(self) -> None:
        # moto creates the task's callback endpoint only for waitForTaskToken-capable services, and
        # its .sync path needs that endpoint; the pattern itself is never used by the pipeline.
        super().__init__(
            supported_integration_patterns={
                cast(ResourceCondition, ResourceCondition.Sync),
                cast(ResourceCondition, ResourceCondition.WaitForTaskToken),
            }
        )

    def _validate_service_integration_is_supported(self) -> None:
        action = self.resource.api_action
        if action not in OPTIMIZED_ACTIONS:
            raise ValueError(f"sagemaker:{action} is not an integration the local cloud answers")
        if self.resource.condition == ResourceCondition.Sync and action not in _SYNC_JOBS:
            raise ValueError(f"sagemaker:{action} has no .sync integration pattern")

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            return _service_failure_event(self, env, ex)
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        backend = _STATE.require_backend()
        method = getattr(backend, camel_to_snake_case(self.resource.api_action))
        env.stack.append(to_state_json(method(**normalised_parameters)))

    def _build_sync_resolver(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> Callable[[], Any]:
        env.stack.pop()  # the create call's response; the describe output replaces it
        describe_name, name_key, status_key = _SYNC_JOBS[self.resource.api_action]
        describe = getattr(_STATE.require_backend(), describe_name)
        job_name = normalised_parameters[name_key]

        def resolve() -> dict[str, Any] | None:
            described = to_state_json(describe(**{name_key: job_name}))
            status = described.get(status_key)
            if status in _JOB_RUNNING:
                return None
            if status in _JOB_FAILED:
                raise _task_failure(
                    self, env, StatesErrorNameType.StatesTaskFailed.to_name(), json.dumps(described)
                )
            return described

        return resolve


class AwsSdkTaskService(state_task_service_aws_sdk.StateTaskServiceAwsSdk):
    """aws-sdk integrations: sagemaker -> the backend; SDK service names boto3 spells differently."""

    def _get_boto_service_name(self, boto_service_name: str | None = None) -> str:
        name = super()._get_boto_service_name(boto_service_name)
        return AWS_SDK_SERVICE_NAMES.get(name, name)

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            return _service_failure_event(self, env, ex)
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        if self.resource.api_name != "sagemaker":
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        method = getattr(_STATE.require_backend(), camel_to_snake_case(self.resource.api_action), None)
        if method is None:  # e.g. the model registry: moto's own SageMaker answers it
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        env.stack.append(to_state_json(method(**normalised_parameters) or {}))


class DynamoDbTaskService(state_task_service_dynamodb.StateTaskServiceDynamoDB):
    """`dynamodb:<action>`: moto's integration, with errors named by the same rule as the others."""

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            return _service_failure_event(self, env, ex)
        return super()._from_error(env=env, ex=ex)


def iso_timestamp(value: _dt.datetime) -> str:
    """AWS's context-object timestamp format: 2026-11-22T02:34:46.123Z."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_ORIGINAL_ENVIRONMENT: Final = execution_worker.ExecutionWorker._get_evaluation_environment


def _evaluation_environment(self: Any) -> Any:
    env = _ORIGINAL_ENVIRONMENT(self)
    execution: Any = env.states.context_object.context_object_data["Execution"]
    start = execution.get("StartTime")
    if isinstance(start, _dt.datetime):
        execution["StartTime"] = iso_timestamp(start)
    return env


_ORIGINAL_SEND_TASK_FAILURE: Final = StepFunctionResponse.send_task_failure


def _send_task_failure(self: Any) -> Any:
    """SendTaskFailure with its `cause` (moto's response layer drops it; its backend takes it)."""
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


_ORIGINAL_INNER_STRING_OF: Final = Preprocessor._inner_string_of


def _inner_string_of(parser_rule_context: Any) -> str | None:
    """A string literal's value, its JSON escapes decoded (identifiers and names are unaffected)."""
    text = _ORIGINAL_INNER_STRING_OF(parser_rule_context)
    raw = parser_rule_context.getText() if text is not None else None
    if raw is not None and len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        try:
            decoded: str = json.loads(raw)
            return decoded
        except ValueError:
            return text
    return text


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
    if StepFunctionResponse.send_task_failure not in (_ORIGINAL_SEND_TASK_FAILURE, _send_task_failure):
        problems.append("StepFunctionResponse.send_task_failure changed")
    if Preprocessor.__dict__.get("_inner_string_of").__func__ not in (  # type: ignore[union-attr]
        _ORIGINAL_INNER_STRING_OF,
        _inner_string_of,
    ):
        problems.append("Preprocessor._inner_string_of changed")
    if "cause" not in _parameters(StepFunctionsParserBackend.send_task_failure):
        problems.append("the parser backend's send_task_failure takes no cause any more")
    worker_env = getattr(execution_worker.ExecutionWorker, "_get_evaluation_environment", None)
    if worker_env not in (_ORIGINAL_ENVIRONMENT, _evaluation_environment) or _parameters(worker_env) != [
        "self"
    ]:
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
    _STATE.backend = backend
    sfn_jsonata.install()
    state_task_factory.state_task_service_for = _state_task_service_for
    execution_worker.ExecutionWorker._get_evaluation_environment = _evaluation_environment  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = _send_task_failure  # type: ignore[method-assign]
    Preprocessor._inner_string_of = staticmethod(_inner_string_of)  # type: ignore[method-assign]
    moto_hooks.install()
    if lambdas is not None:
        moto_hooks.use_runtime(lambdas)


def uninstall() -> None:
    state_task_factory.state_task_service_for = _ORIGINAL_FACTORY
    execution_worker.ExecutionWorker._get_evaluation_environment = _ORIGINAL_ENVIRONMENT  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = _ORIGINAL_SEND_TASK_FAILURE  # type: ignore[method-assign]
    Preprocessor._inner_string_of = staticmethod(_ORIGINAL_INNER_STRING_OF)  # type: ignore[method-assign]
    moto_hooks.uninstall()
    _STATE.backend = None


def is_installed() -> bool:
    return state_task_factory.state_task_service_for is _state_task_service_for


@contextmanager
def installed(backend: SageMakerBackend | None, *, lambdas: LambdaRuntime | None = None) -> Iterator[None]:
    install(backend, lambdas=lambdas)
    try:
        yield
    finally:
        uninstall()
