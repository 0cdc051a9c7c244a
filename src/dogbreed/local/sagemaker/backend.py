"""`LocalSageMaker`: the local SageMaker backend behind boto3's sagemaker method names and shapes.

    backend = LocalSageMaker(state_dir=Path(".local-cloud/sagemaker"))
    backend.create_training_job(**request)       # same request dict as boto3
    backend.describe_training_job(TrainingJobName="job")["TrainingJobStatus"]
    backend.runtime_url                            # sagemaker-runtime endpoint_url (InvokeEndpoint)
    backend.shutdown()                             # stops every job, fleet and server it started

Every public method that mirrors a SageMaker operation takes the boto3 keyword arguments and returns
the boto3 response dict (without ResponseMetadata); errors are botocore `ClientError`s with
SageMaker's codes, so callers (the Step Functions shim, the SageMaker API front door in `api`) cannot
tell the difference. Each operation is answered by one service:

    training   TrainingService   training jobs              (training.py, training_runner.py, container.py)
    tuning     TuningService     hyperparameter tuning jobs (tuning.py)
    models     ModelStore        models, endpoint configs   (models.py)
    endpoints  EndpointService   endpoints and their fleets (endpoints.py, fleet.py, health.py)
    transform  TransformService  Batch Transform jobs over the same model servers (transform.py)
    tags       TagStore          AddTags, ListTags, DeleteTags (tags.py)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config

from dogbreed.local.background import Ticker
from dogbreed.local.sagemaker import endpoint_metrics
from dogbreed.local.sagemaker._aws import (
    DEFAULT_REGION,
    ClientFactory,
    RoleClientFactory,
    default_client_factory,
    operation_name,
    validate_request,
)
from dogbreed.local.sagemaker.autoscaling import AutoScaler
from dogbreed.local.sagemaker.data_capture import CaptureWriter
from dogbreed.local.sagemaker.endpoints import EndpointService
from dogbreed.local.sagemaker.fleet import ServeCommand
from dogbreed.local.sagemaker.health import replace_dead_instances
from dogbreed.local.sagemaker.models import ModelStore
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.local.sagemaker.runtime import Router, runtime_server
from dogbreed.local.sagemaker.serverless import DEFAULT_IDLE_SECONDS, stop_idle_workers
from dogbreed.local.sagemaker.tags import TagStore
from dogbreed.local.sagemaker.training import TrainingService
from dogbreed.local.sagemaker.transform import TransformService
from dogbreed.local.sagemaker.tuning import TuningService

if TYPE_CHECKING:
    from dogbreed.local.cloud.faults import FaultRegistry

TAG_OPERATIONS = frozenset({"add_tags", "list_tags", "delete_tags"})


class _Operation:
    """`create_model = _Operation("models")`: the backend method its `models` service answers, after
    the request is validated against botocore's input shape (as a real client would before sending)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, backend: Any, owner: type | None = None) -> Any:
        if backend is None:
            return self
        answer = getattr(getattr(backend, self.service), self.name)
        operation = operation_name(self.name)

        def validated(**request: Any) -> Any:
            validate_request(operation, request)
            return answer(**request)

        return validated

    def __call__(self, backend: Any, **request: Any) -> Any:
        return self.__get__(backend)(**request)


class LocalSageMaker:
    create_training_job = _Operation("training")
    describe_training_job = _Operation("training")
    stop_training_job = _Operation("training")
    list_training_jobs = _Operation("training")
    create_hyper_parameter_tuning_job = _Operation("tuning")
    describe_hyper_parameter_tuning_job = _Operation("tuning")
    list_hyper_parameter_tuning_jobs = _Operation("tuning")
    list_training_jobs_for_hyper_parameter_tuning_job = _Operation("tuning")
    stop_hyper_parameter_tuning_job = _Operation("tuning")
    create_model = _Operation("models")
    describe_model = _Operation("models")
    delete_model = _Operation("models")
    list_models = _Operation("models")
    create_endpoint_config = _Operation("models")
    describe_endpoint_config = _Operation("models")
    delete_endpoint_config = _Operation("models")
    list_endpoint_configs = _Operation("models")
    create_endpoint = _Operation("endpoints")
    describe_endpoint = _Operation("endpoints")
    update_endpoint = _Operation("endpoints")
    delete_endpoint = _Operation("endpoints")
    list_endpoints = _Operation("endpoints")
    create_transform_job = _Operation("transform")
    describe_transform_job = _Operation("transform")
    stop_transform_job = _Operation("transform")
    list_transform_jobs = _Operation("transform")
    add_tags = _Operation("tags")
    list_tags = _Operation("tags")
    delete_tags = _Operation("tags")

    def __init__(
        self,
        state_dir: Path,
        *,
        clients: ClientFactory | None = None,
        region: str = DEFAULT_REGION,
        serve_command: ServeCommand | None = None,
        max_parallel_jobs: int | None = None,
        stop_grace_seconds: float = 5.0,
        checkpoint_sync_seconds: float = 5.0,
        runtime_port: int = 0,
        start_runtime: bool = True,
        autoscaling_interval_seconds: float = 5.0,
        scaling_window_seconds: float = 60.0,
        instance_max_concurrency: int = 8,
        publish_logs: bool = True,
        default_hyperparameters: dict[str, str] | None = None,
        role_clients: RoleClientFactory | None = None,
        runtime_middleware: Callable[[Any], Any] | None = None,
        serverless_idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.clients = clients or default_client_factory(region)
        self.processes = ProcessRegistry()
        self.tags = TagStore()
        self.training = TrainingService(
            state_dir=self.state_dir,
            clients=self.clients,
            processes=self.processes,
            tags=self.tags,
            region=region,
            stop_grace_seconds=stop_grace_seconds,
            checkpoint_sync_seconds=checkpoint_sync_seconds,
            publish_logs=publish_logs,
            default_hyperparameters=default_hyperparameters,
            role_clients=role_clients,
        )
        self.tuning = TuningService(
            training=self.training,
            tags=self.tags,
            region=region,
            max_parallel=max_parallel_jobs or max(1, os.cpu_count() or 1),
        )
        self.models = ModelStore(
            state_dir=self.state_dir,
            clients=self.clients,
            tags=self.tags,
            region=region,
            role_clients=role_clients,
        )
        self.endpoints = EndpointService(
            state_dir=self.state_dir,
            models=self.models,
            processes=self.processes,
            tags=self.tags,
            region=region,
            serve_command=serve_command,
            serverless_idle_seconds=serverless_idle_seconds,
        )
        self.transform = TransformService(
            state_dir=self.state_dir,
            models=self.models,
            processes=self.processes,
            tags=self.tags,
            region=region,
            clients=self.clients,
            role_clients=role_clients,
            serve_command=serve_command,
        )
        self.health = Ticker(self.replace_dead_instances, 1.0, name="endpoint-health")
        self.serverless_reaper = Ticker(
            functools.partial(stop_idle_workers, self.endpoints), 1.0, name="serverless-idle"
        )
        self.router = Router(self.endpoints, region=region, max_concurrency=instance_max_concurrency)
        self.capture = CaptureWriter(
            self.endpoints, self.models, role_clients or (lambda _role: self.clients)
        )
        self.router.capture = self.capture
        self.metrics = Ticker(self.publish_metrics, 2.0, name="endpoint-metrics")
        self.runtime = runtime_server(self.router, port=runtime_port, middleware=runtime_middleware)
        if start_runtime:
            self.runtime.start()
        self.autoscaler = AutoScaler(
            self.endpoints,
            clients=self.clients,
            interval_seconds=autoscaling_interval_seconds,
            window_seconds=scaling_window_seconds,
        )
        self.autoscaler.start()
        self._closed = False

    @classmethod
    def operations(cls) -> frozenset[str]:
        """The SageMaker operations this backend answers, by their boto3 names."""
        return frozenset(name for name, value in vars(cls).items() if isinstance(value, _Operation))

    def answers(self, operation: str, request: dict[str, Any]) -> bool:
        """Whether this backend owns the call; tag calls on resources it does not hold are moto's."""
        if operation in TAG_OPERATIONS:
            return self.tags.answers(str(request.get("ResourceArn", "")))
        return operation in self.operations()

    @property
    def faults(self) -> FaultRegistry | None:
        return self.router.faults

    @faults.setter
    def faults(self, registry: FaultRegistry | None) -> None:
        """The local cloud's faults: InvokeEndpoint errors, failing updates, lost training instances."""
        self.router.faults = self.endpoints.faults = self.training.faults = registry

    # Runtime (sagemaker-runtime InvokeEndpoint; HTTP callers use runtime_url or the AWS endpoint)
    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        """InvokeEndpoint through the runtime API, the same path as every HTTP caller."""
        response: dict[str, Any] = self._runtime_client.invoke_endpoint(**request)
        response.pop("ResponseMetadata", None)
        return {**response, "Body": response["Body"].read()}

    @functools.cached_property
    def _runtime_client(self) -> Any:
        # The runtime API checks no signature: an unsigned client needs no credentials.
        config = Config(signature_version=UNSIGNED, retries={"max_attempts": 1}, read_timeout=60)
        return boto3.client(
            "sagemaker-runtime", endpoint_url=self.runtime_url, region_name=self.region, config=config
        )

    def publish_metrics(self) -> None:
        endpoint_metrics.publish(self.endpoints.serving_variants(), self.clients)

    def replace_dead_instances(self) -> int:
        return replace_dead_instances(self.endpoints, self.processes)

    @property
    def runtime_url(self) -> str:
        return self.runtime.url

    def status(self) -> dict[str, Any]:
        """What the emulator runs behind the API (`dogbreed local status`): fleets, scaling, processes."""
        return {
            "runtime_url": self.runtime.url if self.runtime.started else None,
            "fleets": self.endpoints.fleets(),
            "transform_jobs": self.transform.progress(),
            "scaling_activities": self.autoscaler.activities(),
            "processes": self.processes.alive_pids(),
        }

    def shutdown(self) -> None:
        """Stop tuning and training jobs, endpoint fleets, the runtime server and the autoscaler."""
        if self._closed:
            return
        self._closed = True
        self.autoscaler.stop()
        self.health.stop()
        self.serverless_reaper.stop()
        self.tuning.shutdown()
        self.training.shutdown()
        self.transform.shutdown()
        self.endpoints.shutdown()
        self.metrics.stop()
        self.publish_metrics()
        self.runtime.stop()
        self.capture.close()
        self.processes.shutdown()

    def __enter__(self) -> LocalSageMaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
