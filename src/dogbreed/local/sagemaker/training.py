"""Training jobs: CreateTrainingJob / DescribeTrainingJob / StopTrainingJob / ListTrainingJobs.

`TrainingJob` is one job's lifecycle (status, secondary status transitions, stop requests, the
DescribeTrainingJob view); `TrainingService` answers the API and starts each job in a thread, where
`training_runner.JobRunner` runs it under the container contract of `container`.
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dogbreed.local.sagemaker._aws import (
    ClientFactory,
    Listing,
    RoleClientFactory,
    api_error,
    not_found,
    sagemaker_arn,
    utcnow,
)
from dogbreed.local.sagemaker.joblog import JobLog, MetricListener
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.local.sagemaker.tags import TagStore
from dogbreed.local.sagemaker.training_runner import JobRunner

if TYPE_CHECKING:
    from dogbreed.local.cloud.faults import FaultRegistry

StopReason = Literal["user", "max_runtime", "early_stopping"]
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
LISTING = Listing("TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus", order="Ascending")
_SECONDARY_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job runtime exceeded MaxRuntimeInSeconds provided",
    "Failed": "Training job failed",
}
# Request members DescribeTrainingJob echoes when the request had them.
_ECHOED = ("CheckpointConfig", "Environment", "VpcConfig", "ExperimentConfig", "RetryStrategy")


@dataclass
class TrainingJob:
    request: dict[str, Any]
    arn: str
    tuning_job_arn: str | None = None
    status: str = "InProgress"
    secondary_status: str = "Starting"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    failure_reason: str | None = None
    creation_time: Any = field(default_factory=utcnow)
    last_modified: Any = field(default_factory=utcnow)
    training_start: Any = None
    training_end: Any = None
    model_artifacts: str | None = None
    log: JobLog | None = None
    stop_reason: StopReason | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    pids: list[int] = field(default_factory=list)
    directory: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return str(self.request["TrainingJobName"])

    def transition(self, status: str, message: str | None = None) -> None:
        now = utcnow()
        with self.lock:
            if self.transitions and "EndTime" not in self.transitions[-1]:
                self.transitions[-1]["EndTime"] = now
            self.transitions.append(
                {"Status": status, "StartTime": now, "StatusMessage": message or _SECONDARY_MESSAGES[status]}
            )
            self.secondary_status = status
            self.last_modified = now

    def finish(self, status: str, secondary: str, reason: str | None = None) -> None:
        self.transition(secondary, reason if secondary == "Failed" and reason else None)
        now = utcnow()
        with self.lock:
            self.transitions[-1]["EndTime"] = now
            self.status = status
            self.failure_reason = reason[:1024] if reason else None
            self.training_end = now
            self.last_modified = now
        self.done.set()

    def request_stop(self, reason: StopReason) -> None:
        with self.lock:
            if self.status in TERMINAL or self.stop_event.is_set():
                return
            self.stop_reason = reason
            self.stop_event.set()
            if reason != "max_runtime":
                self.status = "Stopping"

    def final_metrics(self) -> dict[str, tuple[float, dt.datetime]]:
        if self.log is None:
            return {}
        return {
            name: (point.value, dt.datetime.fromtimestamp(point.timestamp, dt.UTC))
            for name, point in self.log.final_metrics().items()
        }

    def describe(self) -> dict[str, Any]:
        request = copy.deepcopy(self.request)
        with self.lock:
            out: dict[str, Any] = {
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "TrainingJobStatus": self.status,
                "SecondaryStatus": self.secondary_status,
                "HyperParameters": request.get("HyperParameters", {}),
                "AlgorithmSpecification": request["AlgorithmSpecification"],
                "RoleArn": request["RoleArn"],
                "InputDataConfig": request.get("InputDataConfig", []),
                "OutputDataConfig": request["OutputDataConfig"],
                "ResourceConfig": request["ResourceConfig"],
                "StoppingCondition": request["StoppingCondition"],
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "SecondaryStatusTransitions": copy.deepcopy(self.transitions),
                "EnableNetworkIsolation": request.get("EnableNetworkIsolation", False),
                "EnableInterContainerTrafficEncryption": request.get(
                    "EnableInterContainerTrafficEncryption", False
                ),
                "EnableManagedSpotTraining": request.get("EnableManagedSpotTraining", False),
                **{key: request[key] for key in _ECHOED if key in request},
            }
            if self.tuning_job_arn:
                out["TuningJobArn"] = self.tuning_job_arn
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            if self.model_artifacts:
                out["ModelArtifacts"] = {"S3ModelArtifacts": self.model_artifacts}
            if self.training_start is not None:
                out["TrainingStartTime"] = self.training_start
            if self.training_end is not None:
                out["TrainingEndTime"] = self.training_end
                if self.training_start is not None:
                    seconds = max(1, int((self.training_end - self.training_start).total_seconds()))
                    out["TrainingTimeInSeconds"] = seconds
                    out["BillableTimeInSeconds"] = seconds * int(
                        request["ResourceConfig"].get("InstanceCount", 1)
                    )
        out["FinalMetricDataList"] = [
            {"MetricName": name, "Value": value, "Timestamp": stamp}
            for name, (value, stamp) in self.final_metrics().items()
        ]
        return out

    def summary(self) -> dict[str, Any]:
        with self.lock:
            out = {
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "TrainingJobStatus": self.status,
                "SecondaryStatus": self.secondary_status,
            }
            if self.training_end is not None:
                out["TrainingEndTime"] = self.training_end
        return out


class TrainingService:
    """Runs training jobs in background threads; describe polls their state."""

    def __init__(
        self,
        *,
        state_dir: Path,
        clients: ClientFactory,
        processes: ProcessRegistry,
        tags: TagStore,
        region: str,
        python: str = sys.executable,
        stop_grace_seconds: float = 5.0,
        checkpoint_sync_seconds: float = 5.0,
        publish_logs: bool = True,
        threads_per_job: int | None = None,
        default_hyperparameters: dict[str, str] | None = None,
        role_clients: RoleClientFactory | None = None,
    ) -> None:
        self._region = region
        # Hyperparameters every job gets unless its request sets them (the local cloud's offline defaults).
        self._default_hyperparameters = dict(default_hyperparameters or {})
        self._tags = tags
        self._grace = stop_grace_seconds
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}
        self.runner = JobRunner(
            root=state_dir / "training-jobs",
            clients=clients,
            processes=processes,
            python=python,
            stop_grace_seconds=stop_grace_seconds,
            checkpoint_sync_seconds=checkpoint_sync_seconds,
            publish_logs=publish_logs,
            threads_per_job=threads_per_job,
            role_clients=role_clients,
        )

    @property
    def faults(self) -> FaultRegistry | None:
        return self.runner.faults

    @faults.setter
    def faults(self, registry: FaultRegistry | None) -> None:
        self.runner.faults = registry

    # ----------------------------------------------------------------- API (boto3 shapes)

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return {"TrainingJobArn": self.start(request).arn}

    def describe_training_job(self, **request: Any) -> dict[str, Any]:
        return self.get(request["TrainingJobName"], "DescribeTrainingJob").describe()

    def stop_training_job(self, **request: Any) -> dict[str, Any]:
        self.get(request["TrainingJobName"], "StopTrainingJob").request_stop("user")
        return {}

    def list_training_jobs(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            jobs = list(self._jobs.values())
        return LISTING.page([job.summary() for job in jobs], request)

    # ----------------------------------------------------------------- Python API

    def start(
        self,
        request: dict[str, Any],
        *,
        tuning_job_arn: str | None = None,
        metric_listener: MetricListener | None = None,
    ) -> TrainingJob:
        name = request["TrainingJobName"]
        if request["AlgorithmSpecification"].get("TrainingInputMode", "File") != "File":
            raise api_error(
                "CreateTrainingJob", "ValidationException", "Only File input mode is supported locally."
            )
        request = {
            **request,
            "HyperParameters": {**self._default_hyperparameters, **request.get("HyperParameters", {})},
        }
        job = TrainingJob(
            request=copy.deepcopy(request),
            arn=sagemaker_arn("training-job", name, self._region),
            tuning_job_arn=tuning_job_arn,
        )
        with self._lock:
            if name in self._jobs:
                raise api_error(
                    "CreateTrainingJob",
                    "ResourceInUse",
                    f"Training job names must be unique within an AWS account and region, "
                    f"and a training job with this name already exists ({job.arn})",
                )
            self._jobs[name] = job
        self._tags.register(job.arn, request.get("Tags", []))
        job.transition("Starting")
        threading.Thread(
            target=self.runner.run, args=(job, metric_listener), name=f"training-{name}", daemon=True
        ).start()
        return job

    def get(self, name: str, operation: str = "DescribeTrainingJob") -> TrainingJob:
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            raise not_found(operation)
        return job

    def wait(self, name: str, timeout: float | None = None) -> str:
        job = self.get(name)
        job.done.wait(timeout)
        return job.status

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.request_stop("user")
        for job in jobs:
            job.done.wait(timeout=self._grace + 30)
