"""Serverless Inference: a production variant with a `ServerlessConfig` instead of instances.

What SageMaker documents, and the local SageMaker does:
- A variant has either `InstanceType` (+ `InitialInstanceCount`) or `ServerlessConfig`; memory is
  1024-6144 MB in 1 GB steps, `MaxConcurrency` 1-200, `ProvisionedConcurrency` at most
  `MaxConcurrency` (botocore's shapes hold the ranges, not the steps or the pairing).
- Serverless endpoints have one production variant, no data capture, and their models have neither
  a VPC nor network isolation ("Feature exclusions" of Serverless Inference).
- An instance endpoint cannot be updated to serverless (the other way round is allowed).
- No idle floor: CreateEndpoint health-checks the model once and leaves nothing running; an
  invocation that finds no warm worker starts one first (the cold start, reported by CloudWatch as
  `ModelSetupTime`), a worker is kept warm while requests come and stopped after `idle_seconds`
  without one, and more than `MaxConcurrency` concurrent invocations are throttled.

Locally one model-server process serves a variant's concurrent requests (up to `MaxConcurrency`);
on AWS each concurrent invocation may get its own worker. How long AWS keeps a worker warm is not
documented; `idle_seconds` is the local choice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dogbreed.local.sagemaker.endpoints import EndpointService
    from dogbreed.local.sagemaker.fleet import Instance, Variant

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
DEFAULT_IDLE_SECONDS = 300.0


@dataclass
class ServerlessState:
    """A serverless variant's capacity setting and its workers' history."""

    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int | None = None
    cold_starts: int = 0
    last_setup_seconds: float | None = None
    last_used: float = field(default_factory=time.monotonic)
    starting: threading.Lock = field(default_factory=threading.Lock)  # one cold start at a time

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ServerlessState:
        return cls(
            memory_mb=int(config["MemorySizeInMB"]),
            max_concurrency=int(config["MaxConcurrency"]),
            provisioned_concurrency=config.get("ProvisionedConcurrency"),
        )

    def config(self) -> dict[str, Any]:
        """The variant's ServerlessConfig as DescribeEndpoint shows it."""
        out: dict[str, Any] = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency is not None:
            out["ProvisionedConcurrency"] = self.provisioned_concurrency
        return out

    def status(self) -> dict[str, Any]:
        return {
            **self.config(),
            "ColdStarts": self.cold_starts,
            "LastModelSetupSeconds": self.last_setup_seconds,
        }


def is_serverless(variant_spec: dict[str, Any]) -> bool:
    return "ServerlessConfig" in variant_spec


def endpoint_config_problems(request: dict[str, Any]) -> str | None:
    """What SageMaker refuses in a CreateEndpointConfig request beyond botocore's shapes."""
    variants = request["ProductionVariants"]
    for variant in variants:
        name = variant["VariantName"]
        has_instances = "InstanceType" in variant or "InitialInstanceCount" in variant
        if not is_serverless(variant):
            if not ("InstanceType" in variant and "InitialInstanceCount" in variant):
                return (
                    f"Production variant {name} needs InstanceType and InitialInstanceCount, "
                    "or a ServerlessConfig."
                )
            continue
        if has_instances:
            return (
                f"Production variant {name} specifies both ServerlessConfig and instances; "
                "a serverless variant takes no InstanceType or InitialInstanceCount."
            )
        config = variant["ServerlessConfig"]
        if config["MemorySizeInMB"] not in MEMORY_SIZES_MB:
            return (
                f"ServerlessConfig.MemorySizeInMB {config['MemorySizeInMB']} of variant {name} is not one "
                f"of {', '.join(str(size) for size in MEMORY_SIZES_MB)}."
            )
        provisioned = config.get("ProvisionedConcurrency")
        if provisioned is not None and provisioned > config["MaxConcurrency"]:
            return (
                f"ServerlessConfig.ProvisionedConcurrency {provisioned} of variant {name} exceeds its "
                f"MaxConcurrency {config['MaxConcurrency']}."
            )
    if any(is_serverless(variant) for variant in variants):
        if len(variants) > 1:
            return "A serverless endpoint configuration has exactly one production variant."
        if "DataCaptureConfig" in request:
            return "Data capture is not supported for serverless endpoints."
    return None


def serverless_model_problem(model: dict[str, Any]) -> str | None:
    """A model a serverless variant cannot serve: Serverless Inference has no VPC, no isolation."""
    name = model["ModelName"]
    if model.get("VpcConfig"):
        return f"Model {name} has a VpcConfig; serverless endpoints do not support VPC configuration."
    if model.get("EnableNetworkIsolation"):
        return f"Model {name} enables network isolation, which serverless endpoints do not support."
    return None


def instance_to_serverless_problem(serving: list[dict[str, Any]], new: list[dict[str, Any]]) -> str | None:
    """UpdateEndpoint from an instance-based config to a serverless one (SageMaker refuses it)."""
    if any(not is_serverless(variant) for variant in serving) and any(is_serverless(v) for v in new):
        return "An instance-based endpoint cannot be updated to a serverless endpoint."
    return None


def cold_start(service: EndpointService, endpoint_name: str, variant: Variant) -> None:
    """Start a worker for a serverless variant that has none (raises FleetError when it fails)."""
    state = variant.serverless
    if state is None:
        return
    with state.starting:
        with service.lock:
            if variant.fleet.instances:  # another request's cold start got there first
                return
        started = time.perf_counter()
        instance = variant.fleet.start_instance()
        with service.lock:
            endpoint = service.find(endpoint_name)
            # The serving variant, or the new one of a blue/green update in progress.
            pending = endpoint.pending.variants if endpoint is not None and endpoint.pending else {}
            current = endpoint is not None and any(
                variant is known for known in (endpoint.variants.get(variant.name), pending.get(variant.name))
            )
            if current and not service.closing.is_set():
                variant.fleet.instances.append(instance)
                state.cold_starts += 1
                state.last_setup_seconds = time.perf_counter() - started
                state.last_used = time.monotonic()
                variant.metrics.record_setup(state.last_setup_seconds)
        if not current:
            variant.fleet.stop_instance(instance)


def stop_idle_workers(service: EndpointService) -> int:
    """Stop serverless workers that served nothing for the service's serverless_idle_seconds."""
    now = time.monotonic()
    idle: list[tuple[Variant, Instance]] = []
    with service.lock:
        for endpoint in service.endpoints():
            for variant in endpoint.variants.values():
                state = variant.serverless
                if state is None or now - state.last_used < service.serverless_idle_seconds:
                    continue
                for instance in list(variant.fleet.instances):
                    if instance.inflight == 0:
                        variant.fleet.instances.remove(instance)
                        idle.append((variant, instance))
    for variant, instance in idle:
        variant.fleet.stop_instance(instance)
    return len(idle)
