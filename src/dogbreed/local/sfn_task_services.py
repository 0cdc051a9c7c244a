"""The Step Functions task services the local cloud answers itself, plugged in by
`dogbreed.local.moto_shim`: `sagemaker:<action>[.sync]` and `aws-sdk:sagemaker:<action>` by the
plugged-in `SageMakerBackend`, aws-sdk service names boto3 spells differently, and every service's
task errors named as Step Functions names them (`task_error_name`).

Pinned with moto (`dogbreed.local.moto_shim.MOTO_VERSION`); `moto_shim.check_moto_internals` names
the moto internals these rely on.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast, runtime_checkable

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
    state_task_service_callback,
    state_task_service_dynamodb,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.utils import camel_to_snake_case

from dogbreed.aws import stepfunctions as sfn_rules


class ShimError(RuntimeError):
    """moto's internals no longer look like the ones this shim was written against, or the shim
    was asked for something it does not answer."""


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


def use_backend(backend: SageMakerBackend | None) -> None:
    """Plug in the backend the SageMaker integrations call (None: none)."""
    _STATE.backend = backend


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


class _ServiceErrors:
    """A task service whose service's ClientError becomes the failure Step Functions names by
    `task_error_name`; any other error is moto's. Listed before moto's task service class."""

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            return _service_failure_event(self, env, ex)
        return super()._from_error(env=env, ex=ex)  # type: ignore[misc]  # moto's task service, next in the MRO


class SageMakerTaskService(_ServiceErrors, state_task_service_callback.StateTaskServiceCallback):
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


class AwsSdkTaskService(_ServiceErrors, state_task_service_aws_sdk.StateTaskServiceAwsSdk):
    """aws-sdk integrations: sagemaker -> the backend; SDK service names boto3 spells differently."""

    def _get_boto_service_name(self, boto_service_name: str | None = None) -> str:
        name = super()._get_boto_service_name(boto_service_name)
        return AWS_SDK_SERVICE_NAMES.get(name, name)

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


class DynamoDbTaskService(_ServiceErrors, state_task_service_dynamodb.StateTaskServiceDynamoDB):
    """`dynamodb:<action>`: moto's integration, with errors named by the same rule as the others."""
