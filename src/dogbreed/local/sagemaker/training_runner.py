"""Runs one training job as real processes: an `/opt/ml` tree per host, code and channels from S3,
one process per host (a gloo rendezvous on loopback when there are several, as the `torch_distributed`
launcher would), the watch loop (stop requests, MaxRuntimeInSeconds, injected faults, a failed peer,
checkpoint sync), then model.tar.gz / output.tar.gz to S3 and the job's final status."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogbreed.local.sagemaker import container, s3io
from dogbreed.local.sagemaker._aws import ClientFactory, RoleClientFactory, join_s3, utcnow
from dogbreed.local.sagemaker.joblog import JobLog, MetricListener
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.loopback import free_port

if TYPE_CHECKING:
    from dogbreed.local.cloud.faults import FaultRegistry
    from dogbreed.local.sagemaker.training import TrainingJob

logger = logging.getLogger(__name__)

Processes = dict[str, subprocess.Popen[str]]


class JobFailed(Exception):
    """The job ends Failed with this FailureReason."""


class JobStopped(Exception):
    pass


@dataclass
class Workspace:
    root: Path
    hosts: list[str]
    host_dirs: dict[str, Path]
    code_dir: Path
    submit: str = ""
    program: str = "train.py"
    checkpoint_uri: str | None = None
    checkpoints_synced: dict[str, dict[str, tuple[float, int]]] = field(default_factory=dict)

    @property
    def primary(self) -> Path:
        return self.host_dirs[self.hosts[0]]


class JobRunner:
    def __init__(
        self,
        *,
        root: Path,
        clients: ClientFactory,
        processes: ProcessRegistry,
        python: str,
        stop_grace_seconds: float,
        checkpoint_sync_seconds: float,
        publish_logs: bool,
        threads_per_job: int | None,
        role_clients: RoleClientFactory | None = None,
    ) -> None:
        self.root = root
        # S3 and log calls are SageMaker's, made with the job's RoleArn (the cloud signs them so).
        self._clients = role_clients or (lambda _role: clients)
        self._processes = processes
        self._python = python
        self._grace = stop_grace_seconds
        self._checkpoint_sync = checkpoint_sync_seconds
        self._publish_logs = publish_logs
        self._threads_per_job = threads_per_job
        # Set by the local cloud: training faults kill a matching job's processes mid-run.
        self.faults: FaultRegistry | None = None

    def run(self, job: TrainingJob, listener: MetricListener | None) -> None:
        try:
            self._execute(job, listener)
        except JobStopped:
            job.finish("Stopped", "Stopped")
        except JobFailed as failure:
            job.finish("Failed", "Failed", str(failure))
        except Exception as error:
            logger.exception("training job %s failed", job.name)
            job.finish("Failed", "Failed", f"ClientError: {error}")
        finally:
            if job.log is not None:
                job.log.close()
            if not job.done.is_set():
                job.finish("Failed", "Failed", "InternalServerError: the job ended unexpectedly")

    @staticmethod
    def _check_stop(job: TrainingJob) -> None:
        if job.stop_event.is_set():
            raise JobStopped

    def _execute(self, job: TrainingJob, listener: MetricListener | None) -> None:
        request = job.request
        started = time.monotonic()
        space = self._prepare(job, listener)
        self._check_stop(job)
        job.transition("Downloading")
        s3 = self._clients(str(request.get("RoleArn", "")))("s3")
        channels = self._download(job, s3, space)
        job.transition("Training")
        with job.lock:
            job.training_start = utcnow()
        hyperparameters: dict[str, str] = dict(request.get("HyperParameters", {}))
        command = [self._python, space.program, *container.user_args(hyperparameters)]
        procs = self._spawn(job, space, channels, hyperparameters, command)
        assert job.log is not None
        lost = self._watch(job, s3, space, procs, started)
        for proc in procs.values():
            proc.wait()
            self._processes.reap_group(proc)
        job.log.join_pumps()
        codes = {host: proc.returncode for host, proc in procs.items()}
        stopped = job.stop_event.is_set()
        if (stopped and any(space.primary.joinpath("model").iterdir())) or (
            not stopped and all(code == 0 for code in codes.values())
        ):
            job.transition("Uploading")
            self._upload(job, s3, space)
        if space.checkpoint_uri:
            self._sync_checkpoints(s3, space)
        if stopped:
            job.finish("Stopped", "MaxRuntimeExceeded" if job.stop_reason == "max_runtime" else "Stopped")
        elif lost is not None:
            job.finish("Failed", "Failed", lost)
        elif failed := {host: code for host, code in codes.items() if code != 0}:
            # The rank that failed on its own (not by a signal) has the real error; peers die of the teardown.
            host = next((host for host in procs if failed.get(host, 0) > 0), next(iter(failed)))
            command[0] = Path(command[0]).name
            job.finish(
                "Failed", "Failed", container.algorithm_error(failed[host], job.log.stderr(host), command)
            )
        else:
            job.finish("Completed", "Completed")

    def _prepare(self, job: TrainingJob, listener: MetricListener | None) -> Workspace:
        request = job.request
        hosts = container.host_names(int(request["ResourceConfig"].get("InstanceCount", 1)))
        root = self.root / job.name
        if root.exists():
            shutil.rmtree(root)
        job.directory = root
        host_dirs = {host: root / host for host in hosts}
        for host_dir in host_dirs.values():
            for sub in container.HOST_DIRECTORIES:
                (host_dir / sub).mkdir(parents=True, exist_ok=True)
        job.log = JobLog(
            job_name=job.name,
            hosts=hosts,
            log_dir=root / "logs",
            metric_definitions=request["AlgorithmSpecification"].get("MetricDefinitions", []),
            logs_client=self._clients(str(request.get("RoleArn", "")))("logs")
            if self._publish_logs
            else None,
            listener=listener,
        )
        return Workspace(root=root, hosts=hosts, host_dirs=host_dirs, code_dir=root / "code")

    def _download(self, job: TrainingJob, s3: Any, space: Workspace) -> list[str]:
        """The source dir and every channel (to the first host; the others link to it)."""
        hyperparameters = job.request.get("HyperParameters", {})
        space.submit = container.decode_hyperparameter(hyperparameters.get(container.SUBMIT_DIRECTORY, ""))
        space.program = container.decode_hyperparameter(hyperparameters.get(container.PROGRAM, "train.py"))
        if not space.submit:
            raise JobFailed(f"ClientError: the {container.SUBMIT_DIRECTORY} hyperparameter is required")
        if job.request.get("EnableNetworkIsolation") and space.submit.startswith("s3://"):
            # The training toolkit downloads the submit directory from inside the container, which
            # network isolation cuts off from S3 (SageMaker stages input channels only).
            raise JobFailed(
                f"AlgorithmError: the container has no network (EnableNetworkIsolation) and cannot "
                f"download {container.SUBMIT_DIRECTORY} {space.submit}: pass the code as an input channel"
            )
        try:
            s3io.fetch_source_dir(s3, space.submit, space.code_dir)
        except Exception as error:
            raise JobFailed(f"ClientError: cannot download {space.submit}: {error}") from error
        if not (space.code_dir / space.program).is_file():
            raise JobFailed(f"ClientError: {space.program} not found in {space.submit}")
        data = space.primary / "input" / "data"
        channels: list[str] = []
        for channel in job.request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            source = channel["DataSource"].get("S3DataSource")
            if source is None:
                raise JobFailed(f"ClientError: channel {name} needs an S3DataSource")
            try:
                count = s3io.download_prefix(s3, source["S3Uri"], data / name)
            except Exception as error:
                raise JobFailed(f"ClientError: cannot download channel {name}: {error}") from error
            if count == 0:
                raise JobFailed(f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}".')
            channels.append(name)
            self._check_stop(job)
        for host in space.hosts[1:]:
            host_data = space.host_dirs[host] / "input" / "data"
            host_data.rmdir()
            host_data.symlink_to(data, target_is_directory=True)
        space.checkpoint_uri = job.request.get("CheckpointConfig", {}).get("S3Uri")
        if space.checkpoint_uri:
            for host_dir in space.host_dirs.values():
                s3io.download_prefix(s3, space.checkpoint_uri, host_dir / "checkpoints")
        self._check_stop(job)
        return channels

    def _spawn(
        self,
        job: TrainingJob,
        space: Workspace,
        channels: list[str],
        hyperparameters: dict[str, str],
        command: list[str],
    ) -> Processes:
        assert job.log is not None
        instance_type = str(job.request["ResourceConfig"].get("InstanceType", "local"))
        threads = self._threads_per_job or max(1, container.host_threads() // len(space.hosts))
        master_port = free_port()
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(container.JOB_VARIABLE_PREFIXES)
        }
        procs: Processes = {}
        for rank, host in enumerate(space.hosts):
            host_dir = space.host_dirs[host]
            env = {**inherited, **job.request.get("Environment", {})}
            env.update(
                container.host_environment(
                    job_name=job.name,
                    job_arn=job.arn,
                    instance_type=instance_type,
                    hosts=space.hosts,
                    rank=rank,
                    host_dir=host_dir,
                    channels=channels,
                    hyperparameters=hyperparameters,
                    submit=space.submit,
                    program=space.program,
                    threads=threads,
                    master_port=master_port,
                )
            )
            files = container.config_files(
                host=host,
                hosts=space.hosts,
                instance_type=instance_type,
                hyperparameters=hyperparameters,
                input_data_config=job.request.get("InputDataConfig", []),
            )
            for name, content in files.items():
                (host_dir / "input" / "config" / name).write_text(
                    json.dumps(content, indent=2, sort_keys=True)
                )
            proc = self._processes.spawn(command, env=env, cwd=space.code_dir)
            procs[host] = proc
            job.pids.append(proc.pid)
            job.log.pump(host, proc)
        return procs

    def _watch(
        self, job: TrainingJob, s3: Any, space: Workspace, procs: Processes, started: float
    ) -> str | None:
        """Until every process exits or the job must end; returns the FailureReason of a lost instance."""
        max_runtime = job.request["StoppingCondition"].get("MaxRuntimeInSeconds")
        last_sync = time.monotonic()
        fault = self.faults.take_named("training", job.name) if self.faults else None
        kill_at = time.monotonic() + fault.delay_seconds if fault else None
        while any(proc.poll() is None for proc in procs.values()):
            if fault is not None and kill_at is not None and time.monotonic() >= kill_at:
                # An instance lost mid-run: every host's processes die at once, with no clean exit.
                for proc in procs.values():
                    self._processes.terminate(proc, 0.0)
                return f"InternalServerError: the training instances were lost ({fault.message})"
            if max_runtime is not None and time.monotonic() - started > float(max_runtime):
                job.request_stop("max_runtime")
            if job.stop_event.is_set():
                if job.stop_reason != "max_runtime":
                    job.transition("Stopping")
                self._terminate_all(list(procs.values()), self._grace)
                return None
            if len(procs) > 1 and any(proc.poll() not in (None, 0) for proc in procs.values()):
                # One host failing ends the job: its peers would block in the rendezvous forever.
                time.sleep(1.0)
                self._terminate_all([proc for proc in procs.values() if proc.poll() is None], self._grace)
                return None
            if space.checkpoint_uri and time.monotonic() - last_sync > self._checkpoint_sync:
                self._sync_checkpoints(s3, space)
                last_sync = time.monotonic()
            time.sleep(0.2)
        return None

    def _terminate_all(self, procs: list[subprocess.Popen[str]], grace: float) -> None:
        threads = [threading.Thread(target=self._processes.terminate, args=(proc, grace)) for proc in procs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _upload(self, job: TrainingJob, s3: Any, space: Workspace) -> None:
        """model.tar.gz (SM_MODEL_DIR at the archive root) and output.tar.gz under <S3OutputPath>/<job>/"""
        output_uri = join_s3(job.request["OutputDataConfig"]["S3OutputPath"], job.name, "output")
        for source, archive in (("model", "model.tar.gz"), ("output/data", "output.tar.gz")):
            directory = space.primary / source
            if not any(directory.iterdir()):
                continue
            packed = s3io.pack_dir(directory, space.root / "output" / archive)
            s3io.upload_file(s3, packed, join_s3(output_uri, archive))
            if archive == "model.tar.gz":
                with job.lock:
                    job.model_artifacts = join_s3(output_uri, archive)

    @staticmethod
    def _sync_checkpoints(s3: Any, space: Workspace) -> None:
        assert space.checkpoint_uri is not None
        for host, host_dir in space.host_dirs.items():
            seen = space.checkpoints_synced.setdefault(host, {})
            try:
                s3io.sync_up(s3, host_dir / "checkpoints", space.checkpoint_uri, seen)
            except Exception:
                logger.exception("checkpoint sync to %s failed", space.checkpoint_uri)
