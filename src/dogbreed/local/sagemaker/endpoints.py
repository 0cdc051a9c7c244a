"""Endpoints, the control plane: Create / Describe / List / Update / Delete and each endpoint's state
machine (Creating -> InService | Failed; InService -> Updating -> InService; Deleting).

Deployments run in worker threads: CreateEndpoint starts a fleet per production variant; UpdateEndpoint
is blue/green with the request's deployment guardrails (`rollout.py`: the new fleets up and healthy
beside the old ones, traffic shifted in steps that bake under the rollback alarms, the old fleets
drained, then stopped; a failed or rolled-back update keeps the old fleets serving and reports why).
Auto scaling changes a variant's instance count through `scale_variant`; `health` replaces instances
that die in service. A serverless variant runs no instance between requests
(`serverless.py`).
"""

from __future__ import annotations

import functools
import threading
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
)
from dogbreed.local.sagemaker.endpoint_metrics import VariantMetrics
from dogbreed.local.sagemaker.fleet import (
    FleetError,
    Instance,
    ServeCommand,
    Variant,
    build_variants,
    default_serve_command,
)
from dogbreed.local.sagemaker.models import ModelStore
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.local.sagemaker.rollout import BlueGreenUpdate, Rollout
from dogbreed.local.sagemaker.serverless import (
    DEFAULT_IDLE_SECONDS,
    instance_to_serverless_problem,
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
    pending: Rollout | None = None  # the update in progress (PendingDeploymentSummary)
    last_rollout: Rollout | None = None  # the latest update, kept for its timeline
    last_deployment_config: dict[str, Any] | None = None

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
        alarm_poll_seconds: float = 1.0,
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
        self._alarm_poll = alarm_poll_seconds
        self.lock = threading.RLock()  # guards endpoints, their variants and every fleet's instances
        self._endpoints: dict[str, Endpoint] = {}
        self._workers: list[threading.Thread] = []
        self.closing = threading.Event()
        # Set by the local cloud: failing endpoint updates.
        self.faults: FaultRegistry | None = None

    # ----------------------------------------------------------------- API

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
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
            if endpoint.last_deployment_config is not None:
                out["LastDeploymentConfig"] = endpoint.last_deployment_config
            if endpoint.pending is not None:
                out["PendingDeploymentSummary"] = endpoint.pending.summary()
            if endpoint.variants:
                out["ProductionVariants"] = [variant.summary() for variant in endpoint.variants.values()]
        return out

    def list_endpoints(self, **request: Any) -> dict[str, Any]:
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        with self.lock:
            summaries = [
                dict(zip(keys, (e.name, e.arn, e.creation_time, e.last_modified, e.status), strict=True))
                for e in self._endpoints.values()
            ]
        return LISTING.page(summaries, request)

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
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
            deployment_config = request.get("DeploymentConfig")
            if deployment_config is None and request.get("RetainDeploymentConfig"):
                deployment_config = endpoint.last_deployment_config
            if deployment_config is not None and "RollingUpdatePolicy" in deployment_config:
                raise api_error(
                    "UpdateEndpoint",
                    "ValidationException",
                    "RollingUpdatePolicy is not supported by the local SageMaker; use BlueGreenUpdatePolicy.",
                )
            endpoint.status = "Updating"
            endpoint.last_modified = utcnow()
            if deployment_config is not None:
                endpoint.last_deployment_config = deployment_config
        self._spawn_worker(self._deploy_update, endpoint, config, deployment_config)
        return {"EndpointArn": endpoint.arn}

    def delete_endpoint(self, **request: Any) -> dict[str, Any]:
        endpoint = self.endpoint(request["EndpointName"], "DeleteEndpoint")
        with self.lock:
            endpoint.status = "Deleting"
            endpoint.deleted = True
            variants, endpoint.variants = endpoint.variants, {}
            pending = dict(endpoint.pending.variants) if endpoint.pending else {}
            del self._endpoints[endpoint.name]
        self._tags.forget(endpoint.arn)
        for variant in [*variants.values(), *pending.values()]:
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
        """(endpoint, variant, instance count, metrics) of every variant in rotation: what CloudWatch gets.
        During an update both fleets of a variant count in its one metric stream."""
        with self.lock:
            serving: dict[tuple[str, str], tuple[int, VariantMetrics]] = {}
            for endpoint in self._endpoints.values():
                pending = endpoint.pending.variants if endpoint.pending else {}
                for variant in [*endpoint.variants.values(), *pending.values()]:
                    count, _ = serving.get((endpoint.name, variant.name), (0, variant.metrics))
                    serving[(endpoint.name, variant.name)] = (
                        count + len(variant.fleet.instances),
                        variant.metrics,
                    )
            return [(name, variant, count, metrics) for (name, variant), (count, metrics) in serving.items()]

    # ----------------------------------------------------------------- deployments

    def _spawn_worker(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self._workers = [worker for worker in self._workers if worker.is_alive()]
            self._workers.append(thread)
        thread.start()

    def build_variants(
        self,
        endpoint: Endpoint,
        config: dict[str, Any],
        deployment: str,
        serve_command: ServeCommand | None = None,
    ) -> dict[str, Variant]:
        """A started, healthy fleet for every production variant of `config` (all or none)."""
        return build_variants(
            config["ProductionVariants"],
            models=self._models,
            processes=self._processes,
            serve_command=serve_command or self._serve_command,
            label=f"{endpoint.name}/{{variant}}/{deployment}",
            log_root=self.root / endpoint.name / deployment,
            startup_timeout=self._startup_timeout,
        )

    def _deploy_new(self, endpoint: Endpoint, config: dict[str, Any]) -> None:
        with endpoint.busy:
            try:
                variants = self.build_variants(endpoint, config, "deployment-1")
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
            self.stop_variants(stale)

    def _deploy_update(
        self, endpoint: Endpoint, config: dict[str, Any], deployment_config: dict[str, Any] | None
    ) -> None:
        """Blue/green with the deployment guardrails of `deployment_config` (rollout.py)."""
        # Imported here: the module is also the broken model server's `python -m` entry point.
        from dogbreed.local.sagemaker.faulty_model import faulty_serve_command

        with endpoint.busy:
            fault = self.faults.take_named("endpoint_update", endpoint.name) if self.faults else None
            serve_command = (
                faulty_serve_command(
                    fault.error or "exit", fault.message, fault.delay_seconds, self._serve_command
                )
                if fault
                else None
            )
            model_name = config["ProductionVariants"][0]["ModelName"]
            BlueGreenUpdate(
                self,
                endpoint,
                config,
                deployment_config,
                serve_command=serve_command,
                alarm_clients=lambda: self._models.role_clients(model_name),
                poll_seconds=self._alarm_poll,
            ).run()

    def stop_variants(self, variants: dict[str, Variant]) -> None:
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
                    **({"PendingDeployment": endpoint.pending.status()} if endpoint.pending else {}),
                    **(
                        {"LastDeployment": endpoint.last_rollout.status()}
                        if endpoint.last_rollout and not endpoint.pending
                        else {}
                    ),
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
                pending = dict(endpoint.pending.variants) if endpoint.pending else {}
                endpoint.status = "OutOfService"
            self.stop_variants({**pending, **{f"old/{name}": v for name, v in variants.items()}})
