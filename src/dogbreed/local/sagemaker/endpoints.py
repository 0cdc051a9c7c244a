"""Models, endpoint configs and endpoints: Create/Describe/Delete, blue/green UpdateEndpoint, and the
routing + metrics used by InvokeEndpoint.

A production variant is a *fleet* of model-server processes (`dogbreed serve`, the SageMaker
container contract: GET /ping, POST /invocations) on free loopback ports, over the extracted
`model.tar.gz`. Routing takes a lease on one instance (round robin, bounded concurrency per
instance) under the same lock that swaps fleets, so a drained fleet never receives a new request.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import logging
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from dogbreed.local.sagemaker import s3io
from dogbreed.local.sagemaker._aws import (
    ACCOUNT_ID,
    ClientFactory,
    api_error,
    sagemaker_arn,
    utcnow,
    validate_request,
)
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.loopback import free_port

if TYPE_CHECKING:
    from dogbreed.local.cloud.faults import FaultRegistry

logger = logging.getLogger(__name__)

ServeCommand = Callable[[Path, int], list[str]]
METRIC_NAMESPACE = "AWS/SageMaker"
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints"
CONTAINER_MODEL_DIR = "/opt/ml/model"


def default_serve_command(model_dir: Path, port: int) -> list[str]:
    return [
        sys.executable, "-m", "dogbreed", "serve",
        "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip


class InvokeError(Exception):
    """A sagemaker-runtime error: `code` is the error type botocore maps to an exception class."""

    def __init__(self, code: str, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.fields = fields


class FleetError(Exception):
    pass


@dataclass
class Instance:
    index: int
    port: int
    proc: Any
    log_path: Path
    inflight: int = 0
    served: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Lease:
    endpoint: str
    variant: Variant
    instance: Instance
    started: float = field(default_factory=time.perf_counter)


class VariantMetrics:
    """Counters flushed to CloudWatch, plus invocation timestamps for the autoscaler."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.invocations = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.model_errors = 0
        self.latencies_us: list[float] = []
        self.recent: deque[float] = deque(maxlen=100_000)
        self.total_invocations = 0

    def record(self, status: int, latency_us: float | None) -> None:
        with self.lock:
            self.invocations += 1
            self.total_invocations += 1
            self.recent.append(time.monotonic())
            if 400 <= status < 500:
                self.errors_4xx += 1
            elif status >= 500:
                self.errors_5xx += 1
            if latency_us is not None:
                self.latencies_us.append(latency_us)

    def rate(self, window_seconds: float) -> int:
        cutoff = time.monotonic() - window_seconds
        with self.lock:
            return sum(1 for stamp in self.recent if stamp >= cutoff)

    def drain(self) -> tuple[int, int, int, list[float]]:
        with self.lock:
            out = (self.invocations, self.errors_4xx, self.errors_5xx, self.latencies_us)
            self.invocations = self.errors_4xx = self.errors_5xx = 0
            self.latencies_us = []
        return out


class Fleet:
    """The model-server processes of one variant of one deployment."""

    def __init__(
        self,
        *,
        label: str,
        model_dir: Path,
        environment: dict[str, str],
        processes: ProcessRegistry,
        serve_command: ServeCommand,
        log_dir: Path,
        startup_timeout: float,
    ) -> None:
        self.label = label
        self.model_dir = model_dir
        self.environment = environment
        self._processes = processes
        self._serve_command = serve_command
        self.log_dir = log_dir
        self._startup_timeout = startup_timeout
        self.instances: list[Instance] = []  # in rotation; guarded by the EndpointService lock
        self._counter = itertools.count(1)
        self._rr = itertools.count()

    def start_instance(self) -> Instance:
        """Start one server and wait for /ping; raises FleetError with the reason on failure."""
        index = next(self._counter)
        port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"instance-{index}.log"
        env = dict(os.environ)
        # The container sees the model at /opt/ml/model; here it is the extracted archive.
        env.update(
            {
                key: value.replace(CONTAINER_MODEL_DIR, str(self.model_dir))
                for key, value in self.environment.items()
            }
        )
        env["SM_MODEL_DIR"] = str(self.model_dir)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONUNBUFFERED"] = "1"
        with log_path.open("w") as log:
            proc = self._processes.spawn(
                self._serve_command(self.model_dir, port), env=env, cwd=self.model_dir, stdout=log, stderr=log
            )
        instance = Instance(index=index, port=port, proc=proc, log_path=log_path)
        deadline = time.monotonic() + self._startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    self._processes.reap_group(proc)
                    raise FleetError(
                        f"the model server exited with code {proc.returncode}: {_tail(log_path)}"
                    )
                try:
                    if client.get(f"{instance.url}/ping").status_code == 200:
                        return instance
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self._processes.terminate(proc, 2.0)
        raise FleetError(f"no answer to /ping within {self._startup_timeout:.0f} s: {_tail(log_path)}")

    def launch(self, count: int) -> None:
        started: list[Instance] = []
        errors: list[str] = []
        lock = threading.Lock()

        def one() -> None:
            try:
                instance = self.start_instance()
            except FleetError as error:
                with lock:
                    errors.append(str(error))
                return
            with lock:
                started.append(instance)

        threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            for instance in started:
                self.stop_instance(instance)
            raise FleetError(errors[0])
        self.instances = sorted(started, key=lambda instance: instance.index)

    def pick(self, max_concurrency: int) -> Instance | None:
        """Round robin over instances with spare capacity (caller holds the routing lock)."""
        if not self.instances:
            return None
        start = next(self._rr)
        for offset in range(len(self.instances)):
            instance = self.instances[(start + offset) % len(self.instances)]
            if instance.inflight < max_concurrency:
                return instance
        return None

    def stop_instance(
        self, instance: Instance, drain_timeout: float = 0.0, is_idle: Callable[[], bool] | None = None
    ) -> None:
        deadline = time.monotonic() + drain_timeout
        while is_idle is not None and not is_idle() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._processes.terminate(instance.proc, 3.0)


def _crashing_serve_command(message: str) -> ServeCommand:
    """A model server that exits at once with `message`: the new fleet never passes its ping check."""

    def command(_model_dir: Path, _port: int) -> list[str]:
        return [sys.executable, "-c", f"import sys; sys.exit({message!r})"]

    return command


def _instance_status(instance: Instance) -> dict[str, Any]:
    return {
        "url": instance.url,
        "pid": instance.proc.pid,
        "inflight": instance.inflight,
        "served": instance.served,
    }


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


@dataclass
class Variant:
    name: str
    model_name: str
    instance_type: str
    weight: float
    fleet: Fleet
    desired_count: int
    metrics: VariantMetrics
    image: str = ""


@dataclass
class Endpoint:
    name: str
    arn: str
    config_name: str
    status: str = "Creating"
    failure_reason: str | None = None
    creation_time: Any = field(default_factory=utcnow)
    last_modified: Any = field(default_factory=utcnow)
    variants: dict[str, Variant] = field(default_factory=dict)
    busy: threading.Lock = field(default_factory=threading.Lock)  # one deployment/scaling at a time
    deleted: bool = False


class EndpointService:
    def __init__(
        self,
        *,
        state_dir: Path,
        clients: ClientFactory,
        processes: ProcessRegistry,
        region: str,
        serve_command: ServeCommand | None = None,
        instance_max_concurrency: int = 8,
        startup_timeout_seconds: float = 120.0,
        drain_timeout_seconds: float = 60.0,
        metrics_interval_seconds: float = 2.0,
    ) -> None:
        self.root = state_dir / "endpoints"
        self.models_root = state_dir / "models"
        self._clients = clients
        self._processes = processes
        self._region = region
        self._serve_command = serve_command or default_serve_command
        self.max_concurrency = instance_max_concurrency
        self._startup_timeout = startup_timeout_seconds
        self._drain_timeout = drain_timeout_seconds
        self.lock = threading.RLock()
        self._models: dict[str, dict[str, Any]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._model_dirs: dict[str, Path] = {}
        self._model_dir_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closing = threading.Event()
        self._metrics_interval = metrics_interval_seconds
        self._metrics_thread = threading.Thread(
            target=self._metrics_loop, name="endpoint-metrics", daemon=True
        )
        self._metrics_thread.start()
        self._health_thread = threading.Thread(target=self._health_loop, name="endpoint-health", daemon=True)
        self._health_thread.start()
        self._http = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
        # Set by the local cloud: injected InvokeEndpoint errors and failing endpoint updates.
        self.faults: FaultRegistry | None = None

    # ----------------------------------------------------------------- models

    def create_model(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateModel", request)
        name = request["ModelName"]
        container = request.get("PrimaryContainer") or (request.get("Containers") or [None])[0]
        if not container or not container.get("ModelDataUrl"):
            raise api_error(
                "CreateModel", "ValidationException", "PrimaryContainer.ModelDataUrl is required locally."
            )
        arn = sagemaker_arn("model", name, self._region)
        with self.lock:
            if name in self._models:
                raise api_error(
                    "CreateModel", "ValidationException", f'Cannot create already existing model "{arn}".'
                )
            self._models[name] = {
                "ModelName": name,
                "ModelArn": arn,
                "PrimaryContainer": copy.deepcopy(container),
                "ExecutionRoleArn": request.get("ExecutionRoleArn", ""),
                "CreationTime": utcnow(),
                "EnableNetworkIsolation": request.get("EnableNetworkIsolation", False),
            }
        return {"ModelArn": arn}

    def describe_model(self, **request: Any) -> dict[str, Any]:
        validate_request("DescribeModel", request)
        with self.lock:
            model = self._models.get(request["ModelName"])
        if model is None:
            arn = sagemaker_arn("model", request["ModelName"], self._region)
            raise api_error("DescribeModel", "ValidationException", f'Could not find model "{arn}".')
        return copy.deepcopy(model)

    def delete_model(self, **request: Any) -> dict[str, Any]:
        validate_request("DeleteModel", request)
        with self.lock:
            if self._models.pop(request["ModelName"], None) is None:
                arn = sagemaker_arn("model", request["ModelName"], self._region)
                raise api_error("DeleteModel", "ValidationException", f'Could not find model "{arn}".')
        return {}

    # ----------------------------------------------------------------- endpoint configs

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateEndpointConfig", request)
        name = request["EndpointConfigName"]
        arn = sagemaker_arn("endpoint-config", name, self._region)
        variants = request["ProductionVariants"]
        names = [variant["VariantName"] for variant in variants]
        if len(set(names)) != len(names):
            raise api_error("CreateEndpointConfig", "ValidationException", "Variant names must be unique.")
        with self.lock:
            if name in self._configs:
                raise api_error(
                    "CreateEndpointConfig",
                    "ValidationException",
                    f'Cannot create already existing endpoint configuration "{arn}".',
                )
            for variant in variants:
                if variant["ModelName"] not in self._models:
                    raise api_error(
                        "CreateEndpointConfig",
                        "ValidationException",
                        f'Could not find model "{sagemaker_arn("model", variant["ModelName"])}".',
                    )
            self._configs[name] = {
                "EndpointConfigName": name,
                "EndpointConfigArn": arn,
                "ProductionVariants": copy.deepcopy(variants),
                "CreationTime": utcnow(),
            }
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, **request: Any) -> dict[str, Any]:
        validate_request("DescribeEndpointConfig", request)
        return copy.deepcopy(self._config(request["EndpointConfigName"], "DescribeEndpointConfig"))

    def delete_endpoint_config(self, **request: Any) -> dict[str, Any]:
        validate_request("DeleteEndpointConfig", request)
        with self.lock:
            self._config(request["EndpointConfigName"], "DeleteEndpointConfig")
            del self._configs[request["EndpointConfigName"]]
        return {}

    def _config(self, name: str, operation: str) -> dict[str, Any]:
        with self.lock:
            config = self._configs.get(name)
        if config is None:
            arn = sagemaker_arn("endpoint-config", name, self._region)
            raise api_error(
                operation, "ValidationException", f'Could not find endpoint configuration "{arn}".'
            )
        return config

    # ----------------------------------------------------------------- endpoints

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateEndpoint", request)
        name = request["EndpointName"]
        config = self._config(request["EndpointConfigName"], "CreateEndpoint")
        arn = sagemaker_arn("endpoint", name, self._region)
        with self.lock:
            if name in self._endpoints:
                raise api_error(
                    "CreateEndpoint",
                    "ValidationException",
                    f'Cannot create already existing endpoint "{arn}".',
                )
            endpoint = Endpoint(name=name, arn=arn, config_name=config["EndpointConfigName"])
            self._endpoints[name] = endpoint
        self._spawn_worker(self._deploy_new, endpoint, config)
        return {"EndpointArn": arn}

    def describe_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("DescribeEndpoint", request)
        endpoint = self.endpoint(request["EndpointName"], "DescribeEndpoint")
        with self.lock:
            out: dict[str, Any] = {
                "EndpointName": endpoint.name,
                "EndpointArn": endpoint.arn,
                "EndpointConfigName": endpoint.config_name,
                "EndpointStatus": endpoint.status,
                "CreationTime": endpoint.creation_time,
                "LastModifiedTime": endpoint.last_modified,
            }
            if endpoint.failure_reason:
                out["FailureReason"] = endpoint.failure_reason
            if endpoint.variants:
                out["ProductionVariants"] = [
                    {
                        "VariantName": variant.name,
                        "DeployedImages": [{"SpecifiedImage": variant.image, "ResolvedImage": variant.image}]
                        if variant.image
                        else [],
                        "CurrentWeight": variant.weight,
                        "DesiredWeight": variant.weight,
                        "CurrentInstanceCount": len(variant.fleet.instances),
                        "DesiredInstanceCount": variant.desired_count,
                    }
                    for variant in endpoint.variants.values()
                ]
        return out

    def list_endpoints(self, **request: Any) -> dict[str, Any]:
        validate_request("ListEndpoints", request)
        with self.lock:
            endpoints = list(self._endpoints.values())
        summaries = [
            {
                "EndpointName": e.name,
                "EndpointArn": e.arn,
                "CreationTime": e.creation_time,
                "LastModifiedTime": e.last_modified,
                "EndpointStatus": e.status,
            }
            for e in endpoints
            if request.get("NameContains", "").lower() in e.name.lower()
            and ("StatusEquals" not in request or e.status == request["StatusEquals"])
        ]
        return {"Endpoints": summaries}

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("UpdateEndpoint", request)
        endpoint = self.endpoint(request["EndpointName"], "UpdateEndpoint")
        config = self._config(request["EndpointConfigName"], "UpdateEndpoint")
        with self.lock:
            if endpoint.status != "InService":
                raise api_error(
                    "UpdateEndpoint",
                    "ValidationException",
                    f'Cannot update in-progress endpoint "{endpoint.arn}".',
                )
            endpoint.status = "Updating"
            endpoint.last_modified = utcnow()
        self._spawn_worker(self._deploy_update, endpoint, config)
        return {"EndpointArn": endpoint.arn}

    def delete_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("DeleteEndpoint", request)
        endpoint = self.endpoint(request["EndpointName"], "DeleteEndpoint")
        with self.lock:
            endpoint.status = "Deleting"
            endpoint.deleted = True
            variants = list(endpoint.variants.values())
            endpoint.variants = {}
            del self._endpoints[endpoint.name]
        for variant in variants:
            for instance in variant.fleet.instances:
                variant.fleet.stop_instance(instance)
        return {}

    def endpoint(self, name: str, operation: str = "DescribeEndpoint") -> Endpoint:
        with self.lock:
            endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise api_error(
                operation,
                "ValidationException",
                f'Could not find endpoint "{sagemaker_arn("endpoint", name)}".',
            )
        return endpoint

    def endpoints(self) -> list[Endpoint]:
        with self.lock:
            return list(self._endpoints.values())

    # ----------------------------------------------------------------- deployments

    def _spawn_worker(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self._workers = [worker for worker in self._workers if worker.is_alive()]
            self._workers.append(thread)
        thread.start()

    def _model_dir(self, model_name: str) -> Path:
        """Download and extract the model's ModelDataUrl once per model (the container's /opt/ml/model)."""
        with self._model_dir_lock:
            if model_name in self._model_dirs:
                return self._model_dirs[model_name]
            with self.lock:
                model = self._models[model_name]
            url = model["PrimaryContainer"]["ModelDataUrl"]
            digest = hashlib.sha256(url.encode()).hexdigest()[:12]
            target = self.models_root / model_name / digest
            archive = s3io.download_file(self._clients("s3"), url, target / "model.tar.gz")
            model_dir = s3io.extract_archive(archive, target / "model")
            self._model_dirs[model_name] = model_dir
            return model_dir

    def _build_variants(
        self,
        endpoint: Endpoint,
        config: dict[str, Any],
        deployment: str,
        serve_command: ServeCommand | None = None,
    ) -> dict[str, Variant]:
        variants: dict[str, Variant] = {}
        try:
            for spec in config["ProductionVariants"]:
                with self.lock:
                    model = self._models.get(spec["ModelName"])
                if model is None:
                    raise FleetError(f"Could not find model {spec['ModelName']}.")
                try:
                    model_dir = self._model_dir(spec["ModelName"])
                except Exception as error:
                    raise FleetError(
                        f'Failed to download model data for container "container_1" from URL: '
                        f'"{model["PrimaryContainer"]["ModelDataUrl"]}". ({error})'
                    ) from error
                count = int(spec.get("InitialInstanceCount", 1))
                fleet = Fleet(
                    label=f"{endpoint.name}/{spec['VariantName']}/{deployment}",
                    model_dir=model_dir,
                    environment=dict(model["PrimaryContainer"].get("Environment", {})),
                    processes=self._processes,
                    serve_command=serve_command or self._serve_command,
                    log_dir=self.root / endpoint.name / deployment / spec["VariantName"],
                    startup_timeout=self._startup_timeout,
                )
                variant = Variant(
                    name=spec["VariantName"],
                    model_name=spec["ModelName"],
                    instance_type=spec.get("InstanceType", "local"),
                    weight=float(spec.get("InitialVariantWeight", 1.0)),
                    fleet=fleet,
                    desired_count=count,
                    metrics=VariantMetrics(),
                    image=str(model["PrimaryContainer"].get("Image", "")),
                )
                variants[variant.name] = variant
                try:
                    fleet.launch(count)
                except FleetError as error:
                    raise FleetError(
                        f"The primary container for production variant {variant.name} did not pass the ping "
                        f"health check. Please check CloudWatch logs for this endpoint. ({error})"
                    ) from error
        except FleetError:
            for variant in variants.values():
                for instance in variant.fleet.instances:
                    variant.fleet.stop_instance(instance)
            raise
        return variants

    def _deploy_new(self, endpoint: Endpoint, config: dict[str, Any]) -> None:
        with endpoint.busy:
            try:
                variants = self._build_variants(endpoint, config, "deployment-1")
            except FleetError as error:
                with self.lock:
                    endpoint.status = "Failed"
                    endpoint.failure_reason = str(error)[:1024]
                    endpoint.last_modified = utcnow()
                return
            with self.lock:
                if endpoint.deleted or self._closing.is_set():
                    stale = variants
                else:
                    stale = {}
                    endpoint.variants = variants
                    endpoint.status = "InService"
                    endpoint.last_modified = utcnow()
            self._stop_variants(stale)

    def _deploy_update(self, endpoint: Endpoint, config: dict[str, Any]) -> None:
        """Blue/green: new fleet up and healthy, atomic switch, drain the old fleet, stop it."""
        with endpoint.busy:
            deployment = f"deployment-{int(time.time() * 1000)}"
            fault = self.faults.take_named("endpoint_update", endpoint.name) if self.faults else None
            try:
                variants = self._build_variants(
                    endpoint, config, deployment, _crashing_serve_command(fault.message) if fault else None
                )
            except FleetError as error:
                # SageMaker keeps the old fleet serving and reports the failed update on the endpoint.
                with self.lock:
                    endpoint.status = "InService"
                    endpoint.failure_reason = str(error)[:1024]
                    endpoint.last_modified = utcnow()
                return
            with self.lock:
                if endpoint.deleted or self._closing.is_set():
                    old = variants
                else:
                    old = endpoint.variants
                    for name, variant in variants.items():
                        if name in old:  # traffic history carries over for metrics and scaling
                            variant.metrics = old[name].metrics
                    endpoint.variants = variants
                    endpoint.config_name = config["EndpointConfigName"]
                    endpoint.status = "InService"
                    endpoint.failure_reason = None
                    endpoint.last_modified = utcnow()
            self._stop_variants(old)

    def _stop_variants(self, variants: dict[str, Variant]) -> None:
        for variant in variants.values():
            instances = list(variant.fleet.instances)
            for instance in instances:
                variant.fleet.stop_instance(
                    instance, self._drain_timeout, is_idle=functools.partial(self._idle, instance)
                )

    def _idle(self, instance: Instance) -> bool:
        with self.lock:
            return instance.inflight == 0

    def scale_variant(self, endpoint: Endpoint, variant_name: str, desired: int) -> bool:
        """Change a variant's instance count (auto scaling); returns False when the endpoint is busy."""
        if not endpoint.busy.acquire(blocking=False):
            return False
        try:
            with self.lock:
                variant = endpoint.variants.get(variant_name)
                if variant is None or endpoint.status != "InService":
                    return False
                variant.desired_count = desired
                endpoint.status = "Updating"
                endpoint.last_modified = utcnow()
            try:
                while True:
                    with self.lock:
                        current = len(variant.fleet.instances)
                    if current == desired or self._closing.is_set():
                        break
                    if current < desired:
                        instance = variant.fleet.start_instance()
                        with self.lock:
                            variant.fleet.instances.append(instance)
                    else:
                        with self.lock:
                            instance = variant.fleet.instances.pop()
                        variant.fleet.stop_instance(
                            instance,
                            self._drain_timeout,
                            is_idle=functools.partial(self._idle, instance),
                        )
            except FleetError as error:
                with self.lock:
                    endpoint.failure_reason = f"Scaling variant {variant_name} failed: {error}"[:1024]
                    variant.desired_count = len(variant.fleet.instances)
            finally:
                with self.lock:
                    endpoint.status = "InService"
                    endpoint.last_modified = utcnow()
            return True
        finally:
            endpoint.busy.release()

    # ----------------------------------------------------------------- invocation routing

    def acquire(self, endpoint_name: str, target_variant: str | None = None) -> Lease:
        with self.lock:
            endpoint = self._endpoints.get(endpoint_name)
            if endpoint is None or not endpoint.variants:
                raise InvokeError(
                    "ValidationError", 400, f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found."
                )
            if target_variant is not None:
                variant = endpoint.variants.get(target_variant)
                if variant is None:
                    raise InvokeError(
                        "ValidationError",
                        400,
                        f"The variant {target_variant} does not exist for endpoint {endpoint_name}.",
                    )
            else:
                names = list(endpoint.variants)
                weights = [endpoint.variants[name].weight for name in names]
                # Traffic split between variants, as SageMaker does: a weighted draw, nothing secret.
                chosen = random.choices(names, weights=weights)[0] if sum(weights) > 0 else names[0]  # noqa: S311  # nosec B311
                variant = endpoint.variants[chosen]
            if not variant.fleet.instances:
                raise InvokeError("ServiceUnavailable", 503, "No instance of the variant is available.")
            instance = variant.fleet.pick(self.max_concurrency)
            if instance is None:
                variant.metrics.record(429, None)
                raise InvokeError(
                    "ThrottlingException",
                    429,
                    f"Endpoint {endpoint_name} is overloaded: too many concurrent requests.",
                )
            instance.inflight += 1
            instance.served += 1
            return Lease(endpoint=endpoint_name, variant=variant, instance=instance)

    def abandon(self, lease: Lease) -> None:
        """Give a lease back without counting an invocation (the request never reached the model)."""
        with self.lock:
            lease.instance.inflight -= 1

    def release(self, lease: Lease, status: int, latency_us: float | None) -> None:
        with self.lock:
            lease.instance.inflight -= 1
        lease.variant.metrics.record(status, latency_us)

    def injected_error(self, endpoint_name: str) -> InvokeError | None:
        """The error of an active endpoint fault for this endpoint (the local cloud's fault injection)."""
        fault = self.faults.take_named("endpoint", endpoint_name) if self.faults else None
        if fault is None:
            return None
        fields: dict[str, Any] = {}
        if fault.error == "ModelError":
            fields = {"OriginalStatusCode": 500, "OriginalMessage": fault.message}
        return InvokeError(fault.error, fault.status, fault.message, **fields)

    def model_error(self, lease: Lease, status: int, message: str) -> InvokeError:
        kind = "client" if status < 500 else "server"
        log_stream = (
            f"arn:aws:logs:{self._region}:{ACCOUNT_ID}:log-group:{ENDPOINT_LOG_GROUP}/{lease.endpoint}"
        )
        return InvokeError(
            "ModelError",
            424,
            f'Received {kind} error ({status}) from primary with message "{message}". See '
            f"{lease.instance.log_path} for more information.",
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=log_stream,
        )

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        """In-process InvokeEndpoint (HTTP callers go through the runtime server)."""
        validate_request("InvokeEndpoint", request, service="sagemaker-runtime")
        injected = self.injected_error(request["EndpointName"])
        if injected is not None:
            raise api_error("InvokeEndpoint", injected.code, injected.message, injected.status)
        try:
            lease = self.acquire(request["EndpointName"], request.get("TargetVariant"))
        except InvokeError as error:
            raise api_error("InvokeEndpoint", error.code, error.message, error.status) from error
        body = request["Body"]
        if hasattr(body, "read"):
            body = body.read()
        headers = {"Content-Type": request.get("ContentType", "application/octet-stream")}
        if request.get("Accept"):
            headers["Accept"] = request["Accept"]
        if request.get("CustomAttributes"):
            headers["X-Amzn-SageMaker-Custom-Attributes"] = request["CustomAttributes"]
        status = 500
        latency: float | None = None
        try:
            response = self._http.post(f"{lease.instance.url}/invocations", content=body, headers=headers)
            latency = (time.perf_counter() - lease.started) * 1e6
            status = response.status_code
        except httpx.HTTPError as error:
            self.release(lease, 503, None)
            raise api_error(
                "InvokeEndpoint", "ServiceUnavailable", f"model server unreachable: {error}", 503
            ) from error
        self.release(lease, status, latency)
        if status >= 400:
            failure = self.model_error(lease, status, response.text)
            raise api_error("InvokeEndpoint", failure.code, failure.message, failure.status)
        return {
            "Body": response.content,
            "ContentType": response.headers.get("content-type", ""),
            "InvokedProductionVariant": lease.variant.name,
        }

    # ----------------------------------------------------------------- instance health

    def _health_loop(self) -> None:
        while not self._closing.wait(1.0):
            try:
                self.replace_dead_instances()
            except Exception:
                logger.exception("endpoint health check failed")

    def replace_dead_instances(self) -> int:
        """Replace model servers that died while in service, as SageMaker replaces unhealthy instances."""
        replaced = 0
        for endpoint in self.endpoints():
            if endpoint.status != "InService" or not endpoint.busy.acquire(blocking=False):
                continue
            try:
                with self.lock:
                    dead = [
                        (variant, instance)
                        for variant in endpoint.variants.values()
                        for instance in variant.fleet.instances
                        if instance.proc.poll() is not None
                    ]
                    for variant, instance in dead:
                        variant.fleet.instances.remove(instance)
                for variant, instance in dead:
                    self._processes.reap_group(instance.proc)
                    logger.warning(
                        "%s instance %d exited with %s; replacing it",
                        variant.fleet.label,
                        instance.index,
                        instance.proc.returncode,
                    )
                    if self._closing.is_set():
                        return replaced
                    try:
                        replacement = variant.fleet.start_instance()
                    except FleetError as error:
                        with self.lock:
                            endpoint.failure_reason = (
                                f"Replacing a failed instance of {variant.name} failed: {error}"
                            )
                        continue
                    with self.lock:
                        current = (
                            endpoint.variants.get(variant.name) is variant and not self._closing.is_set()
                        )
                        if current:
                            variant.fleet.instances.append(replacement)
                    if not current:
                        variant.fleet.stop_instance(replacement)
                    replaced += 1
            finally:
                endpoint.busy.release()
        return replaced

    # ----------------------------------------------------------------- metrics

    def _metrics_loop(self) -> None:
        while not self._closing.wait(self._metrics_interval):
            self.flush_metrics()

    def flush_metrics(self) -> None:
        data: list[dict[str, Any]] = []
        for endpoint in self.endpoints():
            with self.lock:
                variants = list(endpoint.variants.values())
            for variant in variants:
                invocations, e4, e5, latencies = variant.metrics.drain()
                if not invocations:
                    continue
                dims = [
                    {"Name": "EndpointName", "Value": endpoint.name},
                    {"Name": "VariantName", "Value": variant.name},
                ]
                instances = max(1, len(variant.fleet.instances))
                data += [
                    {"MetricName": "Invocations", "Dimensions": dims, "Value": invocations, "Unit": "None"},
                    {
                        "MetricName": "InvocationsPerInstance",
                        "Dimensions": dims,
                        "Value": invocations / instances,
                        "Unit": "None",
                    },
                    {"MetricName": "Invocation4XXErrors", "Dimensions": dims, "Value": e4, "Unit": "None"},
                    {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": e5, "Unit": "None"},
                ]
                if latencies:
                    data.append(
                        {
                            "MetricName": "ModelLatency",
                            "Dimensions": dims,
                            "StatisticValues": {
                                "SampleCount": len(latencies),
                                "Sum": sum(latencies),
                                "Minimum": min(latencies),
                                "Maximum": max(latencies),
                            },
                            "Unit": "Microseconds",
                        }
                    )
        if not data:
            return
        try:
            cloudwatch = self._clients("cloudwatch")
            for start in range(0, len(data), 20):
                cloudwatch.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data[start : start + 20])
        except Exception:
            logger.exception("cannot publish endpoint metrics")

    # ----------------------------------------------------------------- status / shutdown

    def status(self) -> list[dict[str, Any]]:
        out = []
        for endpoint in self.endpoints():
            with self.lock:
                out.append(
                    {
                        "EndpointName": endpoint.name,
                        "EndpointStatus": endpoint.status,
                        "EndpointConfigName": endpoint.config_name,
                        "FailureReason": endpoint.failure_reason,
                        "Variants": [
                            {
                                "VariantName": variant.name,
                                "ModelName": variant.model_name,
                                "CurrentInstanceCount": len(variant.fleet.instances),
                                "DesiredInstanceCount": variant.desired_count,
                                "Instances": [
                                    {
                                        "url": i.url,
                                        "pid": i.proc.pid,
                                        "inflight": i.inflight,
                                        "served": i.served,
                                    }
                                    for i in variant.fleet.instances
                                ],
                                "Invocations": variant.metrics.total_invocations,
                            }
                            for variant in endpoint.variants.values()
                        ],
                    }
                )
        return out

    def shutdown(self) -> None:
        self._closing.set()
        with self.lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=self._startup_timeout + 10)
        for endpoint in self.endpoints():
            with self.lock:
                variants = endpoint.variants
                endpoint.variants = {}
                endpoint.status = "OutOfService"
            self._stop_variants(variants)
        self.flush_metrics()
        self._http.close()
