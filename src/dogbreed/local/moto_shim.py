"""Run the real training pipeline (statemachine/training_pipeline.asl.json) on moto's Step Functions
interpreter: the SageMaker task integrations, the `applicationautoscaling` SDK service name and
in-process Lambda handlers, which moto 5.2.5 lacks.

Pinned to moto==5.2.5: importing this module with another moto fails, and `check_moto_internals()`
(run by `install`, and by tests/unit/test_pipeline_moto_shim.py) names every moto internal it
relies on, so a moto upgrade fails loudly instead of quietly running something else.

What it patches (one dispatch point, `state_task_factory.state_task_service_for`):

- `arn:aws:states:::sagemaker:<action>[.sync]` (optimized integrations: createTrainingJob(.sync),
  createHyperParameterTuningJob(.sync), createModel, createEndpointConfig, createEndpoint,
  updateEndpoint) -> the plugged-in `SageMakerBackend`. `.sync` polls `describe_*` until the job
  is Completed (the describe output is the task result, as on AWS) or Failed/Stopped
  (`States.TaskFailed`, the describe output as the cause).
- `arn:aws:states:::aws-sdk:sagemaker:<action>` (describeEndpoint, describeTrainingJob,
  stopTrainingJob, stopHyperParameterTuningJob, ...) -> the same backend, method `<action>` in
  snake_case. Errors are named as Step Functions names them: `SageMaker.ResourceNotFoundException`
  etc. for SageMaker's modelled errors, `SageMaker.AmazonSageMakerException` for the rest
  (ValidationException, e.g. "Could not find endpoint").
- `arn:aws:states:::aws-sdk:applicationautoscaling:<action>` -> moto's `application-autoscaling`
  backend (moto looks the service up by the SDK name, which differs).
- `$$.Execution.StartTime` is an ISO-8601 string as on AWS (moto hands the context a datetime,
  which breaks intrinsic functions and DynamoDB string attributes built from it).
- `arn:aws:states:::lambda:invoke` for functions registered with `register_lambda` -> the real
  handler called in this process (moto runs Lambda only in Docker). Other functions go to moto.
- The Lambda `Invoke` API (`boto3.client("lambda").invoke`) of a registered function -> the same
  in-process handler, with Lambda's synchronous request limit (6,291,456 bytes: 413
  RequestEntityTooLargeException) and its answer to a body that is not JSON (400
  InvalidRequestContentException).

The backend interface (`SageMakerBackend`) mirrors boto3: every method takes boto3's keyword
arguments and returns boto3's response dict; errors are `botocore.exceptions.ClientError` with
SageMaker's error codes. `dogbreed.local.sagemaker.backend.LocalSageMaker` (real processes) and the
tests' in-memory double both implement it:

    from dogbreed.local import moto_shim
    with moto_shim.installed(backend, lambdas=[moto_shim.LambdaFunction(...)]):
        ... start executions on moto's stepfunctions (execute_state_machine enabled) ...
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, cast, runtime_checkable
from urllib.parse import unquote

import moto

from dogbreed.local.fair_lock import FairRLock

MOTO_VERSION: Final = "5.2.5"
if moto.__version__ != MOTO_VERSION:  # pragma: no cover - exercised only with another moto
    raise RuntimeError(
        f"dogbreed.local.moto_shim patches moto {MOTO_VERSION} internals but moto {moto.__version__} is "
        "installed; re-check the patches against the new moto source and update MOTO_VERSION."
    )

from botocore.exceptions import ClientError  # noqa: E402
from moto.awslambda.responses import LambdaResponse  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402
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
from moto.stepfunctions.parser.asl.component.state.exec.state_task import (  # noqa: E402
    lambda_eval_utils,
    state_task_factory,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (  # noqa: E402
    state_task_service_aws_sdk,
    state_task_service_callback,
    state_task_service_factory,
    state_task_service_lambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (  # noqa: E402
    ResourceCondition,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails  # noqa: E402
from moto.stepfunctions.parser.backend import execution_worker  # noqa: E402
from moto.stepfunctions.parser.utils import camel_to_snake_case  # noqa: E402


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
    TrainingJobStatus / HyperParameterTuningJobStatus InProgress|Stopping -> keep waiting,
    Completed -> task succeeds with the describe output, Failed|Stopped -> task fails."""

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
}
OPTIMIZED_ACTIONS: Final[frozenset[str]] = frozenset(
    {*_SYNC_JOBS, "createModel", "createEndpointConfig", "createEndpoint", "updateEndpoint"}
)
_JOB_RUNNING: Final = frozenset({"InProgress", "Stopping"})
_JOB_FAILED: Final = frozenset({"Failed", "Stopped"})
# SageMaker's modelled exceptions keep their name in Step Functions; anything else (e.g.
# ValidationException "Could not find endpoint") surfaces as the SDK's base exception.
_SAGEMAKER_MODELLED_ERRORS: Final = frozenset(
    {"ResourceNotFound", "ResourceInUse", "ResourceLimitExceeded", "ConflictException"}
)
# aws-sdk integration service names whose boto3 name differs.
AWS_SDK_SERVICE_NAMES: Final[dict[str, str]] = {"applicationautoscaling": "application-autoscaling"}
_AWS_SDK_ERROR_PREFIXES: Final[dict[str, str]] = {
    "applicationautoscaling": "ApplicationAutoScaling",
    "sagemaker": "SageMaker",
}


def sagemaker_error_name(error: ClientError) -> str:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in _SAGEMAKER_MODELLED_ERRORS:
        return f"SageMaker.{code if code.endswith('Exception') else code + 'Exception'}"
    return "SageMaker.AmazonSageMakerException"


def _sagemaker_error_cause(error: ClientError) -> str:
    details = error.response.get("Error", {})
    meta = error.response.get("ResponseMetadata", {})
    return (
        f"{details.get('Message', '')} (Service: SageMaker, Status Code: {meta.get('HTTPStatusCode', 400)}, "
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
# In-process Lambda functions
# --------------------------------------------------------------------------------------------
@dataclass
class LambdaFunction:
    """A template function run in this process: `code_dir` (its CodeUri) goes on sys.path,
    `handler` is "module.path.function", `environment` is applied while it runs."""

    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int = 30
    memory_mb: int = 512
    arn: str = ""
    _callable: Callable[[Any, Any], Any] | None = field(default=None, repr=False)

    def resolve(self) -> Callable[[Any, Any], Any]:
        if self._callable is None:
            module_name, _, attribute = self.handler.rpartition(".")
            code_dir = str(self.code_dir)
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
            module = __import__(module_name, fromlist=[attribute])
            self._callable = getattr(module, attribute)
        return self._callable


@dataclass
class _LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


# One invocation at a time (os.environ is process-wide), first come, first served.
_ENV_LOCK = FairRLock()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    with _ENV_LOCK:
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def invoke_lambda(function: LambdaFunction, payload: Any) -> tuple[Any, str | None]:
    """(response payload, FunctionError) the way Lambda reports a handler's result or exception."""
    event = json.loads(json.dumps(payload, default=_json_default))
    context = _LambdaContext(function.name, function.arn, function.memory_mb, function.timeout_seconds)
    with _environment({"AWS_LAMBDA_FUNCTION_NAME": function.name, **function.environment}):
        try:
            result = function.resolve()(event, context)
        except Exception as exc:
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            return error, "Unhandled"
    return json.loads(json.dumps(result, default=_json_default)), None


# Lambda's synchronous invocation request payload limit (6 MB in the quotas table, 6,291,456 bytes).
LAMBDA_SYNC_REQUEST_LIMIT: Final = 6 * 1024 * 1024


class RequestEntityTooLargeError(JsonRESTError):
    code = 413

    def __init__(self) -> None:
        super().__init__(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {LAMBDA_SYNC_REQUEST_LIMIT} bytes "
            "for the InvokeFunction operation",
        )


class InvalidRequestContentError(JsonRESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__("InvalidRequestContentException", "Could not parse request body into json")


_ORIGINAL_LAMBDA_INVOKE: Final = LambdaResponse.invoke


def _lambda_invoke(self: Any) -> tuple[int, dict[str, str], bytes]:
    """moto's `Invoke` response: a registered function runs in this process, as Lambda would.

    Handled here, before moto reads the body as JSON for its own parameters (a document nested too deeply
    for Python's parser would make that a 500)."""
    function = _STATE.find_lambda(unquote(self.path.rsplit("/", 2)[-2]))
    if function is None:
        result_from_moto: tuple[int, dict[str, str], bytes] = _ORIGINAL_LAMBDA_INVOKE(self)
        return result_from_moto
    body = self.body
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    if len(raw) > LAMBDA_SYNC_REQUEST_LIMIT:
        raise RequestEntityTooLargeError()
    try:
        event = json.loads(raw) if raw else {}
    except ValueError:
        raise InvalidRequestContentError() from None
    except RecursionError:
        # Valid JSON the Python runtime cannot load: Lambda accepts it, the runtime reports this error.
        result: Any = {"errorMessage": "Unable to unmarshal input", "errorType": "Runtime.UnmarshalError"}
        function_error: str | None = "Unhandled"
    else:
        result, function_error = invoke_lambda(function, event)
    headers = {"content-type": "application/json"}
    if function_error:
        headers["x-amz-function-error"] = function_error
    return 200, headers, json.dumps(result, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------------------------
# The patched task states
# --------------------------------------------------------------------------------------------
@dataclass
class _ShimState:
    backend: SageMakerBackend | None = None
    lambdas: dict[str, LambdaFunction] = field(default_factory=dict)

    def require_backend(self) -> SageMakerBackend:
        if self.backend is None:
            raise ShimError("no SageMaker backend is plugged in (moto_shim.install(backend))")
        return self.backend

    def find_lambda(self, function_name: str) -> LambdaFunction | None:
        # FunctionName may be a name, a full ARN or a qualified ARN.
        name = function_name.split(":function:")[-1].split(":")[0]
        return self.lambdas.get(name)


_STATE = _ShimState()


def _sagemaker_failure_event(task: Any, env: Any, error: ClientError) -> FailureEvent:
    """A SageMaker ClientError as the task failure Step Functions reports (`SageMaker.<Code>`)."""
    return _task_failure(task, env, sagemaker_error_name(error), _sagemaker_error_cause(error)).failure_event


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
            return _sagemaker_failure_event(self, env, ex)
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

    @staticmethod
    def _normalise_service_error_name(service_name: str) -> str:
        return _AWS_SDK_ERROR_PREFIXES.get(service_name.lower()) or (
            state_task_service_aws_sdk.StateTaskServiceAwsSdk._normalise_service_error_name(service_name)
        )

    def _get_boto_service_name(self, boto_service_name: str | None = None) -> str:
        name = super()._get_boto_service_name(boto_service_name)
        return AWS_SDK_SERVICE_NAMES.get(name, name)

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError) and self.resource.api_name == "sagemaker":
            return _sagemaker_failure_event(self, env, ex)
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
        if method is None:
            raise ShimError(f"the SageMaker backend does not answer {self.resource.api_action}")
        env.stack.append(to_state_json(method(**normalised_parameters) or {}))


class LambdaTaskService(state_task_service_lambda.StateTaskServiceLambda):
    """`lambda:invoke` of a registered template function runs its real handler in this process."""

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        function = _STATE.find_lambda(str(normalised_parameters.get("FunctionName", "")))
        if function is None:
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        raw = normalised_parameters.get("Payload")
        payload = json.loads(raw) if isinstance(raw, bytes | str) else raw
        result, function_error = invoke_lambda(function, payload)
        if function_error:
            raise lambda_eval_utils.LambdaFunctionErrorException(
                function_error, json.dumps(result, separators=(",", ":"))
            )
        env.stack.append({"StatusCode": 200, "Payload": result, "ExecutedVersion": "$LATEST"})


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


_ORIGINAL_FACTORY: Final = state_task_service_factory.state_task_service_for
_SHIM_SERVICES: Final[dict[str, Callable[[], Any]]] = {
    "sagemaker": SageMakerTaskService,
    "aws-sdk": AwsSdkTaskService,
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
    for cls in (
        callback,
        state_task_service_aws_sdk.StateTaskServiceAwsSdk,
        state_task_service_lambda.StateTaskServiceLambda,
    ):
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
    for name in ("_normalise_service_error_name", "_get_boto_service_name"):
        if not hasattr(aws_sdk, name):
            problems.append(f"StateTaskServiceAwsSdk.{name} is gone")
    if _parameters(lambda_eval_utils.LambdaFunctionErrorException.__init__)[1:] != [
        "function_error",
        "payload",
    ]:
        problems.append("lambda_eval_utils.LambdaFunctionErrorException(function_error, payload) changed")
    worker_env = getattr(execution_worker.ExecutionWorker, "_get_evaluation_environment", None)
    if worker_env not in (_ORIGINAL_ENVIRONMENT, _evaluation_environment) or _parameters(worker_env) != [
        "self"
    ]:
        problems.append("ExecutionWorker._get_evaluation_environment(self) changed")
    if not hasattr(StatesErrorNameType, "StatesTaskFailed"):
        problems.append("StatesErrorNameType.StatesTaskFailed is gone")
    if LambdaResponse.invoke not in (_ORIGINAL_LAMBDA_INVOKE, _lambda_invoke) or _parameters(
        _ORIGINAL_LAMBDA_INVOKE
    ) != ["self"]:
        problems.append("LambdaResponse.invoke(self) changed")
    return problems


def register_lambda(function: LambdaFunction) -> None:
    _STATE.lambdas[function.name] = function


def install(backend: SageMakerBackend | None, *, lambdas: Iterable[LambdaFunction] = ()) -> None:
    """Patch moto's interpreter (idempotent) and plug in `backend` and the in-process functions."""
    problems = check_moto_internals()
    if problems:
        raise ShimError("moto internals changed: " + "; ".join(problems))
    _STATE.backend = backend
    for function in lambdas:
        register_lambda(function)
    state_task_factory.state_task_service_for = _state_task_service_for
    execution_worker.ExecutionWorker._get_evaluation_environment = _evaluation_environment  # type: ignore[method-assign]
    LambdaResponse.invoke = _lambda_invoke  # type: ignore[method-assign]


def uninstall() -> None:
    state_task_factory.state_task_service_for = _ORIGINAL_FACTORY
    execution_worker.ExecutionWorker._get_evaluation_environment = _ORIGINAL_ENVIRONMENT  # type: ignore[method-assign]
    LambdaResponse.invoke = _ORIGINAL_LAMBDA_INVOKE  # type: ignore[method-assign]
    _STATE.backend = None
    _STATE.lambdas.clear()


def is_installed() -> bool:
    return state_task_factory.state_task_service_for is _state_task_service_for


@contextmanager
def installed(backend: SageMakerBackend | None, *, lambdas: Iterable[LambdaFunction] = ()) -> Iterator[None]:
    install(backend, lambdas=lambdas)
    try:
        yield
    finally:
        uninstall()
