"""Instance health: a model server that dies while its endpoint is InService is reaped and replaced
by a new instance of the same fleet, as SageMaker replaces unhealthy instances; a serverless worker
that dies is only removed (the next invocation starts one)."""

from __future__ import annotations

import logging

from dogbreed.local.sagemaker.endpoints import EndpointService
from dogbreed.local.sagemaker.fleet import FleetError
from dogbreed.local.sagemaker.processes import ProcessRegistry

logger = logging.getLogger(__name__)


def replace_dead_instances(endpoints: EndpointService, processes: ProcessRegistry) -> int:
    """Replace model servers that died while in service; returns how many were replaced."""
    replaced = 0
    for endpoint in endpoints.endpoints():
        if endpoint.status != "InService" or not endpoint.busy.acquire(blocking=False):
            continue
        try:
            with endpoints.lock:
                dead = [
                    (variant, instance)
                    for variant in endpoint.variants.values()
                    for instance in variant.fleet.instances
                    if instance.proc.poll() is not None
                ]
                for variant, instance in dead:
                    variant.fleet.instances.remove(instance)
            for variant, instance in dead:
                processes.reap_group(instance.proc)
                logger.warning(
                    "%s instance %d exited with %s; replacing it",
                    variant.fleet.label,
                    instance.index,
                    instance.proc.returncode,
                )
                if endpoints.closing.is_set():
                    return replaced
                if variant.serverless is not None:  # the next invocation starts a new worker
                    continue
                try:
                    replacement = variant.fleet.start_instance()
                except FleetError as error:
                    with endpoints.lock:
                        endpoint.failure_reason = (
                            f"Replacing a failed instance of {variant.name} failed: {error}"
                        )
                    continue
                with endpoints.lock:
                    in_rotation = endpoint.variants.get(variant.name) is variant
                    current = in_rotation and not endpoints.closing.is_set()
                    if current:
                        variant.fleet.instances.append(replacement)
                if not current:
                    variant.fleet.stop_instance(replacement)
                replaced += 1
        finally:
            endpoint.busy.release()
    return replaced
