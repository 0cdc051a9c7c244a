"""Endpoints, the control plane: Create / Describe / List / Update / Delete and each endpoint's state
machine (Creating -> InService | Failed; InService -> Updating -> InService; Deleting).

Deployments run in worker threads: CreateEndpoint starts a fleet per production variant; UpdateEndpoint
is blue/green (the new fleets up and healthy, an atomic switch under the routing lock, the old fleets
drained, then stopped; a failed update keeps the old fleets serving and reports why). Auto scaling
changes a variant's instance count through `scale_variant`; `health` replaces instances that die in
service. A serverless variant runs no instance between requests (`serverless.py`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogbreed.local.sagemaker._aws import (
    Listing,
    api_error,
    could_not_find,
    sagemaker_arn,
    utcnow,
    validate_request,
)
from dogbreed.local.sagemaker.endpoint_metrics import VariantMetrics
from dogbreed.local.sagemaker.fleet import (
    Fleet,
    FleetError,
    Instance,
    ServeCommand,
    Variant,
    crashing_serve_command,
    default_serve_command,
)
from dogbreed.local.sagemaker.models import ModelStore
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.local.sagemaker.serverless import (
    DEFAULT_IDLE_SECONDS,
    ServerlessState,
    instance_to_serverless_problem,
    is_serverless,
)
from dogbreed.local.sagemaker.tags import TagStore

if TYPE_CHECKING:
    from dogbreed.local.cloud.faults import FaultRegistry

LISTING = Listing("Endpoints", "EndpointName", "EndpointStatus")
_REASON_LIMIT = 1024


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

    def settle(self, status: str, failure_reason: str | None) -> None:
        """The end of a deployment or scaling activity (the caller holds the service lock)."""
        self.status = status
        self.failure_reason = failure_reason[:_REASON_LIMIT] if failure_reason else None
        self.last_modified = utcnow()


class EndpointService:
    def __init__(
        self,
        *,
        state_dir: Path,
        models: ModelStore,
        processes: ProcessRegistry,
        tags: TagStore,
        region: str,
        serve_command: ServeCommand | None = None,
        startup_timeout_seconds: float = 120.0,
        drain_timeout_seconds: float = 60.0,
        serverless_idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        self.root = state_dir / "endpoints"
        self._models = models
        self._processes = processes
        self._tags = tags
        self._region = region
        self._serve_command = serve_command or default_serve_command
        self._startup_timeout = startup_timeout_seconds
        self._drain_timeout = drain_timeout_seconds
        self.serverless_idle_seconds = serverless_idle_seconds
        self.lock = threading.RLock()  # guards endpoints, their variants and every fleet's instances
        self._endpoints: dict[str, Endpoint] = {}
        self._workers: list[threading.Thread] = []
        self.closing = threading.Event()
        # Set by the local cloud: failing endpoint updates.
        self.faults: FaultRegistry | None = None

    # ----------------------------------------------------------------- API

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateEndpoint", request)
        name = request["EndpointName"]
        config = self._models.config(request["EndpointConfigName"], "CreateEndpoint")
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
        self._tags.register(arn, request.get("Tags", []))
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
                    _variant_summary(variant) for variant in endpoint.variants.values()
                ]
        return out

    def list_endpoints(self, **request: Any) -> dict[str, Any]:
        validate_request("ListEndpoints", request)
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        with self.lock:
            summaries = [
                dict(zip(keys, (e.name, e.arn, e.creation_time, e.last_modified, e.status), strict=True))
                for e in self._endpoints.values()
            ]
        return LISTING.page(summaries, request)

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("UpdateEndpoint", request)
        endpoint = self.endpoint(request["EndpointName"], "UpdateEndpoint")
        config = self._models.config(request["EndpointConfigName"], "UpdateEndpoint")
        with self.lock:
            if endpoint.status != "InService":
                raise api_error(
                    "UpdateEndpoint",
                    "ValidationException",
                    f'Cannot update in-progress endpoint "{endpoint.arn}".',
                )
            serving = self._models.config(endpoint.config_name, "UpdateEndpoint")["ProductionVariants"]
            problem = instance_to_serverless_problem(serving, config["ProductionVariants"])
            if problem:
                raise api_error("UpdateEndpoint", "ValidationException", problem)
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
            variants, endpoint.variants = endpoint.variants, {}
            del self._endpoints[endpoint.name]
        self._tags.forget(endpoint.arn)
        for variant in variants.values():
            variant.fleet.stop_all()
        return {}

    def find(self, name: str) -> Endpoint | None:
        with self.lock:
            return self._endpoints.get(name)

    def endpoint(self, name: str, operation: str) -> Endpoint:
        endpoint = self.find(name)
        if endpoint is None:
            raise could_not_find(operation, "endpoint", "endpoint", name, self._region)
        return endpoint

    def endpoints(self) -> list[Endpoint]:
        with self.lock:
            return list(self._endpoints.values())

    def serving_variants(self) -> list[tuple[str, str, int, VariantMetrics]]:
        """(endpoint, variant, instance count, metrics) of every variant in rotation: what CloudWatch gets."""
        with self.lock:
            return [
                (endpoint.name, variant.name, len(variant.fleet.instances), variant.metrics)
                for endpoint in self._endpoints.values()
                for variant in endpoint.variants.values()
            ]

    # ----------------------------------------------------------------- deployments

    def _spawn_worker(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self._workers = [worker for worker in self._workers if worker.is_alive()]
            self._workers.append(thread)
        thread.start()

    def _build_variants(
        self,
        endpoint: Endpoint,
        config: dict[str, Any],
        deployment: str,
        serve_command: ServeCommand | None = None,
    ) -> dict[str, Variant]:
        """A started, healthy fleet for every production variant of `config` (all or none)."""
        variants: dict[str, Variant] = {}
        try:
            for spec in config["ProductionVariants"]:
                try:
                    model = self._models.model(spec["ModelName"], "CreateEndpoint")
                except Exception as error:
                    raise FleetError(f"Could not find model {spec['ModelName']}.") from error
                container = self._models.serving_container(model["ModelName"])
                try:
                    model_dir = self._models.model_dir(spec["ModelName"])
                except Exception as error:
                    raise FleetError(
                        f'Failed to download model data for container "container_1" from URL: '
                        f'"{container["ModelDataUrl"]}". ({error})'
                    ) from error
                variant = Variant(
                    name=spec["VariantName"],
                    model_name=spec["ModelName"],
                    instance_type=spec.get("InstanceType", "local"),
                    weight=float(spec.get("InitialVariantWeight", 1.0)),
                    fleet=Fleet(
                        label=f"{endpoint.name}/{spec['VariantName']}/{deployment}",
                        model_dir=model_dir,
                        environment=dict(container.get("Environment", {})),
                        processes=self._processes,
                        serve_command=serve_command or self._serve_command,
                        log_dir=self.root / endpoint.name / deployment / spec["VariantName"],
                        startup_timeout=self._startup_timeout,
                    ),
                    desired_count=0 if is_serverless(spec) else int(spec.get("InitialInstanceCount", 1)),
                    metrics=VariantMetrics(),
                    image=str(container.get("Image", "")),
                    serverless=ServerlessState.from_config(spec["ServerlessConfig"])
                    if is_serverless(spec)
                    else None,
                )
                variants[variant.name] = variant
                try:
                    # A serverless variant's model is health-checked once, then nothing keeps running.
                    variant.fleet.launch(variant.desired_count or 1)
                except FleetError as error:
                    raise FleetError(
                        f"The primary container for production variant {variant.name} did not pass the ping "
                        f"health check. Please check CloudWatch logs for this endpoint. ({error})"
                    ) from error
                if variant.serverless is not None:
                    variant.fleet.stop_all()
                    variant.fleet.instances = []
        except FleetError:
            for variant in variants.values():
                variant.fleet.stop_all()
            raise
        return variants

    def _deploy_new(self, endpoint: Endpoint, config: dict[str, Any]) -> None:
        with endpoint.busy:
            try:
                variants = self._build_variants(endpoint, config, "deployment-1")
            except FleetError as error:
                with self.lock:
                    endpoint.settle("Failed", str(error))
                return
            with self.lock:
                if endpoint.deleted or self.closing.is_set():
                    stale = variants
                else:
                    stale = {}
                    endpoint.variants = variants
                    endpoint.settle("InService", None)
            self._stop_variants(stale)

    def _deploy_update(self, endpoint: Endpoint, config: dict[str, Any]) -> None:
        """Blue/green: new fleet up and healthy, atomic switch, drain the old fleet, stop it."""
        with endpoint.busy:
            deployment = f"deployment-{int(time.time() * 1000)}"
            fault = self.faults.take_named("endpoint_update", endpoint.name) if self.faults else None
            crashing = crashing_serve_command(fault.message) if fault else None
            try:
                variants = self._build_variants(endpoint, config, deployment, crashing)
            except FleetError as error:
                # SageMaker keeps the old fleet serving and reports the failed update on the endpoint.
                with self.lock:
                    endpoint.settle("InService", str(error))
                return
            with self.lock:
                if endpoint.deleted or self.closing.is_set():
                    old = variants
                else:
                    old = endpoint.variants
                    for name, variant in variants.items():
                        if name in old:  # traffic history carries over for metrics and scaling
                            variant.metrics = old[name].metrics
                    endpoint.variants = variants
                    endpoint.config_name = config["EndpointConfigName"]
                    endpoint.settle("InService", None)
            self._stop_variants(old)

    def _stop_variants(self, variants: dict[str, Variant]) -> None:
        for variant in variants.values():
            for instance in list(variant.fleet.instances):
                self._drain_and_stop(variant, instance)

    def _drain_and_stop(self, variant: Variant, instance: Instance) -> None:
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
                if variant is None or variant.serverless is not None or endpoint.status != "InService":
                    return False
                variant.desired_count = desired
                endpoint.status = "Updating"
                endpoint.last_modified = utcnow()
            reason = endpoint.failure_reason
            try:
                while not self.closing.is_set():
                    with self.lock:
                        current = len(variant.fleet.instances)
                        surplus = variant.fleet.instances.pop() if current > desired else None
                    if current == desired:
                        break
                    if surplus is not None:
                        self._drain_and_stop(variant, surplus)
                    else:
                        instance = variant.fleet.start_instance()
                        with self.lock:
                            variant.fleet.instances.append(instance)
            except FleetError as error:
                reason = f"Scaling variant {variant_name} failed: {error}"
                with self.lock:
                    variant.desired_count = len(variant.fleet.instances)
            finally:
                with self.lock:
                    endpoint.settle("InService", reason)
            return True
        finally:
            endpoint.busy.release()

    # ----------------------------------------------------------------- emulator status / shutdown

    def fleets(self) -> list[dict[str, Any]]:
        """The model-server processes behind every endpoint (what DescribeEndpoint does not show)."""
        with self.lock:
            return [
                {
                    "EndpointName": endpoint.name,
                    "EndpointStatus": endpoint.status,
                    "Variants": [variant.status() for variant in endpoint.variants.values()],
                }
                for endpoint in self._endpoints.values()
            ]

    def shutdown(self) -> None:
        self.closing.set()
        with self.lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=self._startup_timeout + 10)
        for endpoint in self.endpoints():
            with self.lock:
                variants, endpoint.variants = endpoint.variants, {}
                endpoint.status = "OutOfService"
            self._stop_variants(variants)


def _variant_summary(variant: Variant) -> dict[str, Any]:
    """DescribeEndpoint's ProductionVariantSummary: instance counts, or the serverless config."""
    summary: dict[str, Any] = {
        "VariantName": variant.name,
        "DeployedImages": [{"SpecifiedImage": variant.image, "ResolvedImage": variant.image}]
        if variant.image
        else [],
        "CurrentWeight": variant.weight,
        "DesiredWeight": variant.weight,
    }
    if variant.serverless is not None:
        config = variant.serverless.config()
        return {**summary, "CurrentServerlessConfig": config, "DesiredServerlessConfig": dict(config)}
    return {
        **summary,
        "CurrentInstanceCount": len(variant.fleet.instances),
        "DesiredInstanceCount": variant.desired_count,
    }
