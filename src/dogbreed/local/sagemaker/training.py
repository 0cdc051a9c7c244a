"""Training jobs: CreateTrainingJob / DescribeTrainingJob / StopTrainingJob / ListTrainingJobs.

A job runs the script from `sagemaker_submit_directory` / `sagemaker_program` as real processes
under SageMaker's container contract (an /opt/ml tree per host, channels downloaded from S3,
`hyperparameters.json`, `--key value` flags, `SM_*` variables). `InstanceCount > 1` starts one
process per host with a gloo rendezvous on loopback, as the `torch_distributed` launcher would.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogbreed.local.sagemaker import s3io
from dogbreed.local.sagemaker._aws import (
    ClientFactory,
    api_error,
    join_s3,
    not_found,
    sagemaker_arn,
    utcnow,
    validate_request,
)
from dogbreed.local.sagemaker.joblog import JobLog, MetricListener, failure_message
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.loopback import free_port

if TYPE_CHECKING:
    from dogbreed.local.cloud.faults import FaultRegistry

logger = logging.getLogger(__name__)

SUBMIT_DIRECTORY = "sagemaker_submit_directory"
PROGRAM = "sagemaker_program"

_JOB_VARIABLE_PREFIXES = (
    "SM_",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_",
    "GROUP_RANK",
)

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

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


def decode_hyperparameter(value: str) -> str:
    """Hyperparameters arrive as strings, JSON-encoded by the SageMaker SDK (`"\\"train.py\\""`)."""
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return value
    # Numbers and booleans keep the spelling the caller chose ("1e-3", "true").
    return decoded if isinstance(decoded, str) else value


def user_args(hyperparameters: dict[str, str]) -> list[str]:
    """The flags the PyTorch container passes: `--key value` for every non-`sagemaker_` key."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        if key.startswith("sagemaker_"):
            continue
        args += [f"--{key}", decode_hyperparameter(hyperparameters[key])]
    return args


class StopReason:
    USER = "user"
    MAX_RUNTIME = "max_runtime"
    EARLY_STOPPING = "early_stopping"


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
    stop_reason: str | None = None
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

    def final_metrics(self) -> dict[str, tuple[float, Any]]:
        if self.log is None:
            return {}
        return {
            name: (point.value, _from_epoch(point.timestamp))
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
            }
            for key in ("CheckpointConfig", "Environment", "VpcConfig", "ExperimentConfig", "RetryStrategy"):
                if key in request:
                    out[key] = request[key]
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


def _from_epoch(seconds: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class _JobStopped(Exception):
    pass


class TrainingService:
    """Runs training jobs in background threads; describe polls their state."""

    def __init__(
        self,
        *,
        state_dir: Path,
        clients: ClientFactory,
        processes: ProcessRegistry,
        region: str,
        python: str = sys.executable,
        stop_grace_seconds: float = 5.0,
        checkpoint_sync_seconds: float = 5.0,
        publish_logs: bool = True,
        threads_per_job: int | None = None,
    ) -> None:
        self.root = state_dir / "training-jobs"
        self._clients = clients
        self._processes = processes
        self._region = region
        self._python = python
        self._grace = stop_grace_seconds
        self._checkpoint_sync = checkpoint_sync_seconds
        self._publish_logs = publish_logs
        self._threads_per_job = threads_per_job
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}
        # Set by the local cloud: training faults kill a matching job's processes mid-run.
        self.faults: FaultRegistry | None = None

    # ----------------------------------------------------------------- API (boto3 shapes)

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        job = self.start(request)
        return {"TrainingJobArn": job.arn}

    def describe_training_job(self, **request: Any) -> dict[str, Any]:
        validate_request("DescribeTrainingJob", request)
        return self.get(request["TrainingJobName"], "DescribeTrainingJob").describe()

    def stop_training_job(self, **request: Any) -> dict[str, Any]:
        validate_request("StopTrainingJob", request)
        job = self.get(request["TrainingJobName"], "StopTrainingJob")
        self.stop(job, StopReason.USER)
        return {}

    def list_training_jobs(self, **request: Any) -> dict[str, Any]:
        validate_request("ListTrainingJobs", request)
        with self._lock:
            jobs = list(self._jobs.values())
        summaries = [job.summary() for job in jobs]
        if "NameContains" in request:
            summaries = [
                s for s in summaries if request["NameContains"].lower() in s["TrainingJobName"].lower()
            ]
        if "StatusEquals" in request:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == request["StatusEquals"]]
        for key, test in (
            ("CreationTimeAfter", lambda s, t: s["CreationTime"] > t),
            ("CreationTimeBefore", lambda s, t: s["CreationTime"] < t),
            ("LastModifiedTimeAfter", lambda s, t: s["LastModifiedTime"] > t),
            ("LastModifiedTimeBefore", lambda s, t: s["LastModifiedTime"] < t),
        ):
            if key in request:
                summaries = [s for s in summaries if test(s, request[key])]
        sort_key = {"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"}[
            request.get("SortBy", "CreationTime")
        ]
        summaries.sort(
            key=lambda s: s[sort_key], reverse=request.get("SortOrder", "Ascending") == "Descending"
        )
        return paginate(summaries, request, "TrainingJobSummaries")

    # ----------------------------------------------------------------- Python API

    def start(
        self,
        request: dict[str, Any],
        *,
        tuning_job_arn: str | None = None,
        metric_listener: MetricListener | None = None,
    ) -> TrainingJob:
        validate_request("CreateTrainingJob", request)
        name = request["TrainingJobName"]
        spec = request["AlgorithmSpecification"]
        if spec.get("TrainingInputMode", "File") != "File":
            raise api_error(
                "CreateTrainingJob", "ValidationException", "Only File input mode is supported locally."
            )
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
        job.transition("Starting")
        thread = threading.Thread(
            target=self._run, args=(job, metric_listener), name=f"training-{name}", daemon=True
        )
        thread.start()
        return job

    def get(self, name: str, operation: str = "DescribeTrainingJob") -> TrainingJob:
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            raise not_found(operation)
        return job

    def stop(self, job: TrainingJob, reason: str) -> None:
        with job.lock:
            if job.status in TERMINAL or job.stop_event.is_set():
                return
            job.stop_reason = reason
            job.stop_event.set()
            if reason != StopReason.MAX_RUNTIME:
                job.status = "Stopping"

    def wait(self, name: str, timeout: float | None = None) -> str:
        job = self.get(name)
        job.done.wait(timeout)
        return job.status

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.stop(job, StopReason.USER)
        for job in jobs:
            job.done.wait(timeout=self._grace + 30)

    # ----------------------------------------------------------------- job execution

    def _run(self, job: TrainingJob, listener: MetricListener | None) -> None:
        try:
            self._execute(job, listener)
        except _JobStopped:
            job.finish("Stopped", "Stopped")
        except Exception as error:
            logger.exception("training job %s failed", job.name)
            job.finish("Failed", "Failed", f"ClientError: {error}")
        finally:
            if job.log is not None:
                job.log.close()
            if not job.done.is_set():
                job.finish("Failed", "Failed", "InternalServerError: the job ended unexpectedly")

    def _check_stop(self, job: TrainingJob) -> None:
        if job.stop_event.is_set():
            raise _JobStopped

    def _execute(self, job: TrainingJob, listener: MetricListener | None) -> None:
        request = job.request
        s3 = self._clients("s3")
        count = int(request["ResourceConfig"].get("InstanceCount", 1))
        hosts = [f"algo-{index + 1}" for index in range(count)]
        root = self.root / job.name
        if root.exists():
            shutil.rmtree(root)
        job.directory = root
        host_dirs = {host: root / host for host in hosts}
        for host_dir in host_dirs.values():
            for sub in ("input/config", "input/data", "model", "output/data", "checkpoints", "code"):
                (host_dir / sub).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        max_runtime = request["StoppingCondition"].get("MaxRuntimeInSeconds")

        job.log = JobLog(
            job_name=job.name,
            hosts=hosts,
            log_dir=root / "logs",
            metric_definitions=request["AlgorithmSpecification"].get("MetricDefinitions", []),
            logs_client=self._clients("logs") if self._publish_logs else None,
            listener=listener,
        )
        self._check_stop(job)

        job.transition("Downloading")
        hyperparameters: dict[str, str] = dict(request.get("HyperParameters", {}))
        submit = decode_hyperparameter(hyperparameters.get(SUBMIT_DIRECTORY, ""))
        program = decode_hyperparameter(hyperparameters.get(PROGRAM, "train.py"))
        if not submit:
            job.finish("Failed", "Failed", f"ClientError: the {SUBMIT_DIRECTORY} hyperparameter is required")
            return
        code_dir = root / "code"
        try:
            s3io.fetch_source_dir(s3, submit, code_dir)
        except Exception as error:
            job.finish("Failed", "Failed", f"ClientError: cannot download {submit}: {error}")
            return
        if not (code_dir / program).is_file():
            job.finish("Failed", "Failed", f"ClientError: {program} not found in {submit}")
            return
        channels: dict[str, Path] = {}
        primary_data = host_dirs[hosts[0]] / "input" / "data"
        for channel in request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            source = channel["DataSource"].get("S3DataSource")
            if source is None:
                job.finish("Failed", "Failed", f"ClientError: channel {name} needs an S3DataSource")
                return
            try:
                count_files = s3io.download_prefix(s3, source["S3Uri"], primary_data / name)
            except Exception as error:
                job.finish("Failed", "Failed", f"ClientError: cannot download channel {name}: {error}")
                return
            if count_files == 0:
                job.finish(
                    "Failed", "Failed", f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}".'
                )
                return
            channels[name] = primary_data / name
            self._check_stop(job)
        for host in hosts[1:]:
            data_dir = host_dirs[host] / "input" / "data"
            data_dir.rmdir()
            data_dir.symlink_to(primary_data, target_is_directory=True)
        checkpoint_uri = request.get("CheckpointConfig", {}).get("S3Uri")
        if checkpoint_uri:
            for host_dir in host_dirs.values():
                s3io.download_prefix(s3, checkpoint_uri, host_dir / "checkpoints")
        self._check_stop(job)

        job.transition("Training")
        with job.lock:
            job.training_start = utcnow()
        master_port = free_port()
        procs: dict[str, subprocess.Popen[str]] = {}
        pumps: list[threading.Thread] = []
        args = user_args(hyperparameters)
        for rank, host in enumerate(hosts):
            env = self._host_env(
                job,
                host=host,
                hosts=hosts,
                rank=rank,
                host_dir=host_dirs[host],
                code_dir=code_dir,
                channels=list(channels),
                hyperparameters=hyperparameters,
                args=args,
                submit=submit,
                program=program,
                master_port=master_port,
            )
            self._write_configs(job, host, hosts, host_dirs[host], hyperparameters)
            proc = self._processes.spawn([self._python, program, *args], env=env, cwd=code_dir)
            procs[host] = proc
            job.pids.append(proc.pid)
            for stream, is_err in ((proc.stdout, False), (proc.stderr, True)):
                pump = threading.Thread(
                    target=_pump,
                    args=(stream, job.log, host, is_err),
                    name=f"log-{job.name}-{host}",
                    daemon=True,
                )
                pump.start()
                pumps.append(pump)

        seen_checkpoints: dict[str, dict[str, tuple[float, int]]] = {}
        last_sync = time.monotonic()
        fault = self.faults.take_named("training", job.name) if self.faults else None
        kill_at = time.monotonic() + fault.delay_seconds if fault else None
        injected_failure: str | None = None
        while any(proc.poll() is None for proc in procs.values()):
            if fault is not None and kill_at is not None and time.monotonic() >= kill_at:
                # An instance lost mid-run: every host's processes die at once, with no clean exit.
                injected_failure = f"InternalServerError: the training instances were lost ({fault.message})"
                for proc in procs.values():
                    self._processes.terminate(proc, 0.0)
                break
            if max_runtime is not None and time.monotonic() - started > float(max_runtime):
                self.stop(job, StopReason.MAX_RUNTIME)
            if job.stop_event.is_set():
                if job.stop_reason != StopReason.MAX_RUNTIME:
                    job.transition("Stopping")
                threads = [
                    threading.Thread(target=self._processes.terminate, args=(proc, self._grace))
                    for proc in procs.values()
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                break
            failed = [proc for proc in procs.values() if proc.poll() not in (None, 0)]
            if failed and len(procs) > 1:
                # One host failing ends the job: its peers would block in the rendezvous forever.
                time.sleep(1.0)
                for proc in procs.values():
                    if proc.poll() is None:
                        self._processes.terminate(proc, self._grace)
                break
            if checkpoint_uri and time.monotonic() - last_sync > self._checkpoint_sync:
                self._sync_checkpoints(s3, checkpoint_uri, host_dirs, seen_checkpoints)
                last_sync = time.monotonic()
            time.sleep(0.2)
        for proc in procs.values():
            proc.wait()
            self._processes.reap_group(proc)
        for pump in pumps:
            pump.join(timeout=10)
        job.log.flush()

        codes = {host: proc.returncode for host, proc in procs.items()}
        stopped = job.stop_event.is_set()
        output_uri = join_s3(request["OutputDataConfig"]["S3OutputPath"], job.name, "output")
        model_dir = host_dirs[hosts[0]] / "model"
        has_model = any(model_dir.iterdir())
        if (stopped and has_model) or (not stopped and all(code == 0 for code in codes.values())):
            job.transition("Uploading")
            if any(model_dir.iterdir()):
                archive = s3io.pack_dir(model_dir, root / "output" / "model.tar.gz")
                s3io.upload_file(s3, archive, join_s3(output_uri, "model.tar.gz"))
                with job.lock:
                    job.model_artifacts = join_s3(output_uri, "model.tar.gz")
            output_data = host_dirs[hosts[0]] / "output" / "data"
            if any(output_data.iterdir()):
                archive = s3io.pack_dir(output_data, root / "output" / "output.tar.gz")
                s3io.upload_file(s3, archive, join_s3(output_uri, "output.tar.gz"))
        if checkpoint_uri:
            self._sync_checkpoints(s3, checkpoint_uri, host_dirs, seen_checkpoints)
        if stopped:
            if job.stop_reason == StopReason.MAX_RUNTIME:
                job.finish("Stopped", "MaxRuntimeExceeded")
            else:
                job.finish("Stopped", "Stopped")
            return
        if injected_failure is not None:
            job.finish("Failed", "Failed", injected_failure)
            return
        bad = {host: code for host, code in codes.items() if code != 0}
        if not bad:
            job.finish("Completed", "Completed")
            return
        host = _first_failed(procs, bad)
        code = bad[host]
        message = failure_message(list(job.log.stderr_tail[host])) or f"exit code {code}"
        command = " ".join([Path(self._python).name, program, *args])
        job.finish(
            "Failed",
            "Failed",
            f'AlgorithmError: ExecuteUserScriptError:\nExitCode {code}\nErrorMessage "{message}"\n'
            f'Command "{command}", exit code: {code}',
        )

    @staticmethod
    def _sync_checkpoints(
        s3: Any, uri: str, host_dirs: dict[str, Path], seen: dict[str, dict[str, tuple[float, int]]]
    ) -> None:
        for host, host_dir in host_dirs.items():
            try:
                s3io.sync_up(s3, host_dir / "checkpoints", uri, seen.setdefault(host, {}))
            except Exception:
                logger.exception("checkpoint sync to %s failed", uri)

    def _host_env(
        self,
        job: TrainingJob,
        *,
        host: str,
        hosts: list[str],
        rank: int,
        host_dir: Path,
        code_dir: Path,
        channels: list[str],
        hyperparameters: dict[str, str],
        args: list[str],
        submit: str,
        program: str,
        master_port: int,
    ) -> dict[str, str]:
        # The parent's own job variables (if it runs inside a job) must not leak into this job's hosts.
        env = {key: value for key, value in os.environ.items() if not key.startswith(_JOB_VARIABLE_PREFIXES)}
        env.update(job.request.get("Environment", {}))
        user_hps = {
            k: decode_hyperparameter(v) for k, v in hyperparameters.items() if not k.startswith("sagemaker_")
        }
        cpus = os.cpu_count() or 1
        threads = self._threads_per_job or max(1, cpus // len(hosts))
        sm = {
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": host,
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(threads),
            "SM_MODEL_DIR": str(host_dir / "model"),
            "SM_OUTPUT_DIR": str(host_dir / "output"),
            "SM_OUTPUT_DATA_DIR": str(host_dir / "output" / "data"),
            "SM_INPUT_DIR": str(host_dir / "input"),
            "SM_INPUT_CONFIG_DIR": str(host_dir / "input" / "config"),
            "SM_CHECKPOINT_DIR": str(host_dir / "checkpoints"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user_hps, sort_keys=True),
            "SM_USER_ARGS": json.dumps(args),
            "SM_USER_ENTRY_POINT": program,
            "SM_MODULE_NAME": Path(program).stem,
            "SM_MODULE_DIR": submit,
            "SM_LOG_LEVEL": "20",
            "SM_NETWORK_INTERFACE_NAME": "lo",
            "SM_CURRENT_INSTANCE_TYPE": str(job.request["ResourceConfig"].get("InstanceType", "local")),
            "SM_TRAINING_ENV": json.dumps(
                {
                    "job_name": job.name,
                    "hosts": hosts,
                    "current_host": host,
                    "channel_input_dirs": {c: str(host_dir / "input" / "data" / c) for c in channels},
                    "hyperparameters": user_hps,
                    "model_dir": str(host_dir / "model"),
                    "output_data_dir": str(host_dir / "output" / "data"),
                    "num_gpus": 0,
                    "num_cpus": threads,
                    "user_entry_point": program,
                    "is_master": rank == 0,
                    "master_hostname": hosts[0],
                }
            ),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(threads),
            "TRAINING_JOB_NAME": job.name,
            "TRAINING_JOB_ARN": job.arn,
        }
        for channel in channels:
            sm[f"SM_CHANNEL_{channel.upper()}"] = str(host_dir / "input" / "data" / channel)
        for key, value in user_hps.items():
            sm[f"SM_HP_{key.upper().replace('-', '_')}"] = value
        if len(hosts) > 1:
            sm.update(
                {
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(master_port),
                    "RANK": str(rank),
                    "WORLD_SIZE": str(len(hosts)),
                    "LOCAL_RANK": "0",
                    "LOCAL_WORLD_SIZE": "1",
                    "GROUP_RANK": str(rank),
                    "NODE_RANK": str(rank),
                }
            )
        env.update(sm)
        return env

    @staticmethod
    def _write_configs(
        job: TrainingJob, host: str, hosts: list[str], host_dir: Path, hyperparameters: dict[str, str]
    ) -> None:
        config = host_dir / "input" / "config"
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2, sort_keys=True))
        instance_type = str(job.request["ResourceConfig"].get("InstanceType", "local"))
        (config / "resourceconfig.json").write_text(
            json.dumps(
                {
                    "current_host": host,
                    "current_instance_type": instance_type,
                    "current_group_name": "homogeneousCluster",
                    "hosts": hosts,
                    "instance_groups": [
                        {
                            "instance_group_name": "homogeneousCluster",
                            "instance_type": instance_type,
                            "hosts": hosts,
                        }
                    ],
                    "network_interface_name": "lo",
                },
                indent=2,
            )
        )
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    channel["ChannelName"]: {
                        "TrainingInputMode": "File",
                        "S3DistributionType": channel["DataSource"]["S3DataSource"].get(
                            "S3DataDistributionType", "FullyReplicated"
                        ),
                        "RecordWrapperType": channel.get("RecordWrapperType", "None"),
                    }
                    for channel in job.request.get("InputDataConfig", [])
                },
                indent=2,
            )
        )


def _first_failed(procs: dict[str, subprocess.Popen[str]], bad: dict[str, int]) -> str:
    # The rank that failed on its own (non-signal exit) carries the real error; peers die of the teardown.
    for host in procs:
        if host in bad and bad[host] > 0:
            return host
    return next(iter(bad))


def _pump(stream: Any, log: JobLog, host: str, is_stderr: bool) -> None:
    for line in iter(stream.readline, ""):
        log.line(host, line, stderr=is_stderr)
    stream.close()


def paginate(items: list[dict[str, Any]], request: dict[str, Any], key: str) -> dict[str, Any]:
    start = int(request.get("NextToken") or 0)
    size = int(request.get("MaxResults", 100))
    page = items[start : start + size]
    out: dict[str, Any] = {key: page}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out
