"""`LocalSageMaker`: the local SageMaker backend behind boto3's sagemaker method names and shapes.

    backend = LocalSageMaker(state_dir=Path(".local-cloud/sagemaker"))
    backend.create_training_job(**request)       # same request dict as boto3
    backend.describe_training_job(TrainingJobName="job")["TrainingJobStatus"]
    backend.runtime_url                            # sagemaker-runtime endpoint_url (InvokeEndpoint)
    backend.shutdown()                             # stops every job, fleet and server it started

Every public method that mirrors a SageMaker operation takes the boto3 keyword arguments and returns
the boto3 response dict (without ResponseMetadata); errors are botocore `ClientError`s with
SageMaker's codes, so callers (the Step Functions shim, the Lambdas' clients) cannot tell the
difference.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from dogbreed.local.sagemaker._aws import DEFAULT_REGION, ClientFactory, default_client_factory
from dogbreed.local.sagemaker.autoscaling import AutoScaler
from dogbreed.local.sagemaker.endpoints import EndpointService, ServeCommand
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.local.sagemaker.runtime import RuntimeServer
from dogbreed.local.sagemaker.training import TrainingService
from dogbreed.local.sagemaker.tuning import TuningService

logger = logging.getLogger(__name__)

# The operations this backend answers (boto3 snake_case names), for dispatchers such as the SFN shim.
OPERATIONS: tuple[str, ...] = (
    "create_training_job",
    "describe_training_job",
    "stop_training_job",
    "list_training_jobs",
    "create_hyper_parameter_tuning_job",
    "describe_hyper_parameter_tuning_job",
    "list_training_jobs_for_hyper_parameter_tuning_job",
    "stop_hyper_parameter_tuning_job",
    "create_model",
    "describe_model",
    "delete_model",
    "create_endpoint_config",
    "describe_endpoint_config",
    "delete_endpoint_config",
    "create_endpoint",
    "describe_endpoint",
    "update_endpoint",
    "delete_endpoint",
    "list_endpoints",
    "invoke_endpoint",
)


class LocalSageMaker:
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
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.clients = clients or default_client_factory(region)
        self.processes = ProcessRegistry()
        self.training = TrainingService(
            state_dir=self.state_dir,
            clients=self.clients,
            processes=self.processes,
            region=region,
            stop_grace_seconds=stop_grace_seconds,
            checkpoint_sync_seconds=checkpoint_sync_seconds,
            publish_logs=publish_logs,
        )
        cores = os.cpu_count() or 1
        self.tuning = TuningService(
            training=self.training, region=region, max_parallel=max_parallel_jobs or max(1, cores)
        )
        self.endpoints = EndpointService(
            state_dir=self.state_dir,
            clients=self.clients,
            processes=self.processes,
            region=region,
            serve_command=serve_command,
            instance_max_concurrency=instance_max_concurrency,
        )
        self.runtime = RuntimeServer(self.endpoints, port=runtime_port)
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

    # Training jobs
    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return self.training.create_training_job(**request)

    def describe_training_job(self, **request: Any) -> dict[str, Any]:
        return self.training.describe_training_job(**request)

    def stop_training_job(self, **request: Any) -> dict[str, Any]:
        return self.training.stop_training_job(**request)

    def list_training_jobs(self, **request: Any) -> dict[str, Any]:
        return self.training.list_training_jobs(**request)

    # Tuning jobs
    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        return self.tuning.create_hyper_parameter_tuning_job(**request)

    def describe_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        return self.tuning.describe_hyper_parameter_tuning_job(**request)

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        return self.tuning.list_training_jobs_for_hyper_parameter_tuning_job(**request)

    def stop_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        return self.tuning.stop_hyper_parameter_tuning_job(**request)

    # Models, endpoint configs, endpoints
    def create_model(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.create_model(**request)

    def describe_model(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.describe_model(**request)

    def delete_model(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.delete_model(**request)

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.create_endpoint_config(**request)

    def describe_endpoint_config(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.describe_endpoint_config(**request)

    def delete_endpoint_config(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.delete_endpoint_config(**request)

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.create_endpoint(**request)

    def describe_endpoint(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.describe_endpoint(**request)

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.update_endpoint(**request)

    def delete_endpoint(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.delete_endpoint(**request)

    def list_endpoints(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.list_endpoints(**request)

    # Runtime (sagemaker-runtime InvokeEndpoint, in-process; HTTP callers use runtime_url)
    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        return self.endpoints.invoke_endpoint(**request)

    @property
    def runtime_url(self) -> str:
        return self.runtime.url

    def status(self) -> dict[str, Any]:
        """What `dogbreed local status` shows: jobs, endpoints with their fleets, scaling activity."""
        return {
            "runtime_url": self.runtime.url if self.runtime.started else None,
            "training_jobs": [
                {key: job[key] for key in ("TrainingJobName", "TrainingJobStatus", "SecondaryStatus")}
                for job in self.training.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
            ],
            "tuning_jobs": self.tuning.status(),
            "endpoints": self.endpoints.status(),
            "scaling_activities": self.autoscaler.activities(),
            "processes": self.processes.alive_pids(),
        }

    def shutdown(self) -> None:
        """Stop tuning and training jobs, endpoint fleets, the runtime server and the autoscaler."""
        if self._closed:
            return
        self._closed = True
        self.autoscaler.stop()
        self.tuning.shutdown()
        self.training.shutdown()
        self.endpoints.shutdown()
        self.runtime.stop()
        self.processes.shutdown()

    def __enter__(self) -> LocalSageMaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
