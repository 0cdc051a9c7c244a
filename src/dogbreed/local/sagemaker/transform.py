"""Batch Transform jobs: CreateTransformJob / DescribeTransformJob / StopTransformJob / ListTransformJobs.

A job runs in a thread: the model's data downloaded once (`ModelStore.model_dir`), `InstanceCount`
model servers started with the model's container environment plus the job's `Environment` (the same
`dogbreed serve` processes as an endpoint's fleet), every input object sent to them as one request
(`SplitType` None: an image is one record), `MaxConcurrentTransforms` requests in flight per
instance, and each answer written to `<S3OutputPath>/<key relative to the input prefix>.out`. As
SageMaker does, an input that fails (a non-2xx answer, a payload over `MaxPayloadInMB`) gets no
`.out`, the other inputs go on, and the job ends `Failed`; a fleet that does not pass its ping check
fails the job before any input is read. S3 is read and written with the model's execution role.
"""

from __future__ import annotations

import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dogbreed.local.sagemaker._aws import (
    ClientFactory,
    Listing,
    RoleClientFactory,
    api_error,
    not_found,
    parse_s3_uri,
    sagemaker_arn,
    utcnow,
)
from dogbreed.local.sagemaker.fleet import Fleet, FleetError, Instance, ServeCommand, default_serve_command
from dogbreed.local.sagemaker.models import ModelStore
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.local.sagemaker.tags import TagStore

LISTING = Listing("TransformJobSummaries", "TransformJobName", "TransformJobStatus")
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
_MIB = 1024 * 1024
_REASON_LIMIT = 1024
# Request members DescribeTransformJob echoes when the request had them.
_ECHOED = (
    "MaxConcurrentTransforms",
    "ModelClientConfig",
    "MaxPayloadInMB",
    "BatchStrategy",
    "Environment",
    "DataProcessing",
    "ExperimentConfig",
)


@dataclass
class TransformJob:
    request: dict[str, Any]
    arn: str
    status: str = "InProgress"
    failure_reason: str | None = None
    creation_time: Any = field(default_factory=utcnow)
    last_modified: Any = field(default_factory=utcnow)
    start_time: Any = None
    end_time: Any = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    inputs: int = 0
    processed: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.request["TransformJobName"])

    def finish(self, status: str, reason: str | None = None) -> None:
        with self.lock:
            self.status = status
            self.failure_reason = reason[:_REASON_LIMIT] if reason else None
            self.end_time = self.last_modified = utcnow()
        self.done.set()

    def describe(self) -> dict[str, Any]:
        request = copy.deepcopy(self.request)
        with self.lock:
            out: dict[str, Any] = {
                "TransformJobName": self.name,
                "TransformJobArn": self.arn,
                "TransformJobStatus": self.status,
                "ModelName": request["ModelName"],
                "TransformInput": request["TransformInput"],
                "TransformOutput": request["TransformOutput"],
                "TransformResources": request["TransformResources"],
                "CreationTime": self.creation_time,
                **{key: request[key] for key in _ECHOED if key in request},
            }
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            if self.start_time is not None:
                out["TransformStartTime"] = self.start_time
            if self.end_time is not None:
                out["TransformEndTime"] = self.end_time
        return out

    def summary(self) -> dict[str, Any]:
        with self.lock:
            out = {
                "TransformJobName": self.name,
                "TransformJobArn": self.arn,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
                "TransformJobStatus": self.status,
            }
            if self.end_time is not None:
                out["TransformEndTime"] = self.end_time
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
        return out

    def progress(self) -> dict[str, Any]:
        """What the emulator knows beyond DescribeTransformJob: inputs, processed, failed."""
        with self.lock:
            return {
                "TransformJobName": self.name,
                "inputs": self.inputs,
                "processed": self.processed,
                "failed": list(self.failed),
            }


def _relative_inputs(s3: Any, source: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(bucket, prefix, keys relative to it) of an `S3Prefix` or `ManifestFile` data source."""
    kind, uri = source["S3DataType"], source["S3Uri"]
    if kind == "S3Prefix":
        bucket, prefix = parse_s3_uri(uri)
        keys = [
            item["Key"][len(prefix) :]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        ]
        return bucket, prefix, keys
    if kind == "ManifestFile":
        bucket, key = parse_s3_uri(uri)
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if not isinstance(manifest, list) or not manifest or "prefix" not in manifest[0]:
            raise ValueError(f"{uri} is not a manifest: [{{'prefix': 's3://...'}}, 'key', ...]")
        data_bucket, prefix = parse_s3_uri(manifest[0]["prefix"])
        return data_bucket, prefix, [str(item) for item in manifest[1:]]
    raise ValueError(f"S3DataType {kind} is not supported locally")


class TransformService:
    """Runs transform jobs in background threads; describe polls their state."""

    def __init__(
        self,
        *,
        state_dir: Path,
        models: ModelStore,
        processes: ProcessRegistry,
        tags: TagStore,
        region: str,
        clients: ClientFactory,
        role_clients: RoleClientFactory | None = None,
        serve_command: ServeCommand | None = None,
        startup_timeout_seconds: float = 120.0,
    ) -> None:
        self.root = state_dir / "transform-jobs"
        self._models = models
        self._processes = processes
        self._tags = tags
        self._region = region
        self._role_clients = role_clients or (lambda _role: clients)
        self._serve_command = serve_command or default_serve_command
        self._startup_timeout = startup_timeout_seconds
        self._lock = threading.Lock()
        self._jobs: dict[str, TransformJob] = {}
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- API (boto3 shapes)

    def create_transform_job(self, **request: Any) -> dict[str, Any]:
        operation = "CreateTransformJob"
        name = request["TransformJobName"]
        self._models.model(request["ModelName"], operation)
        source = request["TransformInput"]["DataSource"].get("S3DataSource")
        if source is None or source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
            raise api_error(
                operation, "ValidationException", "Only S3Prefix and ManifestFile inputs run locally."
            )
        if request["TransformInput"].get("SplitType", "None") != "None":
            raise api_error(operation, "ValidationException", "Only SplitType None runs locally.")
        job = TransformJob(
            request=copy.deepcopy(request), arn=sagemaker_arn("transform-job", name, self._region)
        )
        with self._lock:
            if name in self._jobs:
                raise api_error(
                    operation,
                    "ResourceInUse",
                    f"Job name must be unique within an AWS account and region, and a job with this name "
                    f"already exists ({job.arn})",
                )
            self._jobs[name] = job
            thread = threading.Thread(target=self._run, args=(job,), name=f"transform-{name}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        self._tags.register(job.arn, request.get("Tags", []))
        thread.start()
        return {"TransformJobArn": job.arn}

    def describe_transform_job(self, **request: Any) -> dict[str, Any]:
        return self.get(request["TransformJobName"], "DescribeTransformJob").describe()

    def stop_transform_job(self, **request: Any) -> dict[str, Any]:
        job = self.get(request["TransformJobName"], "StopTransformJob")
        with job.lock:
            if job.status == "InProgress":
                job.status = "Stopping"
                job.last_modified = utcnow()
        job.stop_event.set()
        return {}

    def list_transform_jobs(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            jobs = list(self._jobs.values())
        return LISTING.page([job.summary() for job in jobs], request)

    def get(self, name: str, operation: str) -> TransformJob:
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            raise not_found(operation)
        return job

    def progress(self) -> list[dict[str, Any]]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [job.progress() for job in jobs if job.status not in TERMINAL]

    # ----------------------------------------------------------------- running a job

    def _run(self, job: TransformJob) -> None:
        request = job.request
        model_name = request["ModelName"]
        with job.lock:
            job.start_time = utcnow()
        try:
            model = self._models.model(model_name, "CreateTransformJob")
            container = self._models.serving_container(model_name)
            model_dir = self._models.model_dir(model_name)
        except Exception as error:
            job.finish(
                "Failed", f"ClientError: Failed to download model data for model {model_name}: {error}"
            )
            return
        s3 = self._role_clients(str(model.get("ExecutionRoleArn", "")))("s3")
        fleet = Fleet(
            label=f"transform/{job.name}",
            model_dir=model_dir,
            environment={**container.get("Environment", {}), **request.get("Environment", {})},
            processes=self._processes,
            serve_command=self._serve_command,
            log_dir=self.root / job.name,
            startup_timeout=self._startup_timeout,
        )
        try:
            fleet.launch(int(request["TransformResources"].get("InstanceCount", 1)))
        except FleetError as error:
            job.finish(
                "Failed", f"ClientError: The model container did not pass the ping health check. ({error})"
            )
            return
        try:
            self._transform(job, fleet, s3)
        except Exception as error:  # reading the inputs failed: the job cannot run
            job.finish("Failed", f"ClientError: {error}")
            return
        finally:
            fleet.stop_all()
        if job.stop_event.is_set():
            job.finish("Stopped")
        elif job.failed:
            job.finish(
                "Failed",
                f"ClientError: {len(job.failed)} of {job.inputs} input objects failed "
                f"({'; '.join(job.failed[:3])}). See job logs for more information.",
            )
        else:
            job.finish("Completed")

    def _transform(self, job: TransformJob, fleet: Fleet, s3: Any) -> None:
        request = job.request
        bucket, prefix, keys = _relative_inputs(s3, request["TransformInput"]["DataSource"]["S3DataSource"])
        with job.lock:
            job.inputs = len(keys)
        out_bucket, out_prefix = parse_s3_uri(request["TransformOutput"]["S3OutputPath"])
        out_prefix = out_prefix.rstrip("/") + "/" if out_prefix else ""
        headers = {"Content-Type": request["TransformInput"].get("ContentType", "application/octet-stream")}
        if request["TransformOutput"].get("Accept"):
            headers["Accept"] = request["TransformOutput"]["Accept"]
        max_payload = int(request.get("MaxPayloadInMB", 6)) * _MIB
        timeout = float(request.get("ModelClientConfig", {}).get("InvocationsTimeoutInSeconds", 600))
        per_instance = max(1, int(request.get("MaxConcurrentTransforms", 1)))
        instances = list(fleet.instances)
        slots = [instances[i % len(instances)] for i in range(per_instance * len(instances))]
        free: list[Instance] = list(slots)
        cond = threading.Condition()

        def one(relative: str) -> None:
            if job.stop_event.is_set():
                return
            with cond:
                cond.wait_for(lambda: bool(free))
                instance = free.pop()
            try:
                answer, problem = self._send(
                    s3, bucket, prefix + relative, instance, headers, max_payload, timeout
                )
            finally:
                with cond:
                    free.append(instance)
                    cond.notify()
            if answer is not None:
                s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{relative}.out", Body=answer)
            with job.lock:
                job.processed += 1
                job.last_modified = utcnow()
                if problem is not None:
                    job.failed.append(f"{relative}: {problem}")

        with ThreadPoolExecutor(max_workers=len(slots)) as pool:
            list(pool.map(one, keys))

    @staticmethod
    def _send(
        s3: Any,
        bucket: str,
        key: str,
        instance: Instance,
        headers: dict[str, str],
        max_payload: int,
        timeout: float,
    ) -> tuple[bytes | None, str | None]:
        """One input object sent to one instance: (its answer, None), or (None, why it failed)."""
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if len(body) > max_payload:
            return None, f"the object is larger than MaxPayloadInMB ({len(body)} bytes)"
        try:
            answer = httpx.post(f"{instance.url}/invocations", content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as error:
            return None, f"the model server did not answer: {error}"
        if answer.status_code // 100 != 2:
            return None, f"the model server answered {answer.status_code}: {answer.text[:200]}"
        return answer.content, None

    def shutdown(self) -> None:
        with self._lock:
            jobs, threads = list(self._jobs.values()), list(self._threads)
        for job in jobs:
            job.stop_event.set()
        for thread in threads:
            thread.join(timeout=self._startup_timeout + 30)
