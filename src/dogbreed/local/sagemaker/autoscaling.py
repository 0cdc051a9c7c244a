"""Target-tracking auto scaling of endpoint variants, from the policies registered through
application-autoscaling (moto) for `endpoint/<name>/variant/<variant>`.

Every `interval_seconds` the scaler measures each variant's invocations over `window_seconds`,
expresses them per instance per minute (SageMakerVariantInvocationsPerInstance), and moves the
instance count toward `ceil(current * metric / target)`, within [MinCapacity, MaxCapacity],
honouring ScaleOutCooldown (between scale-outs) and ScaleInCooldown (after any scaling activity).
A short window lets tests see per-minute rates without waiting minutes.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dogbreed.local.background import Ticker
from dogbreed.local.sagemaker._aws import ClientFactory, utcnow
from dogbreed.local.sagemaker.endpoints import Endpoint, EndpointService

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
PREDEFINED_METRIC = "SageMakerVariantInvocationsPerInstance"
# Application Auto Scaling's defaults for SageMaker variants when a policy leaves cooldowns unset.
DEFAULT_COOLDOWN_SECONDS = 300


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


@dataclass(frozen=True)
class TargetTracking:
    min_capacity: int
    max_capacity: int
    target: float
    scale_out_cooldown: float
    scale_in_cooldown: float
    disable_scale_in: bool
    policy_name: str


def desired_capacity(current: int, metric_per_instance: float, policy: TargetTracking) -> int:
    """Target tracking: the capacity that brings the per-instance metric back to the target."""
    total = metric_per_instance * max(current, 1)
    desired = math.ceil(total / policy.target) if policy.target > 0 else current
    return max(policy.min_capacity, min(policy.max_capacity, desired))


@dataclass
class _VariantState:
    last_scale_out: float = -math.inf
    last_activity: float = -math.inf
    worker: threading.Thread | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class AutoScaler:
    def __init__(
        self,
        endpoints: EndpointService,
        *,
        clients: ClientFactory,
        interval_seconds: float = 5.0,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._endpoints = endpoints
        self._clients = clients
        self.interval = interval_seconds
        self.window = window_seconds
        self._state: dict[str, _VariantState] = {}
        self._activities: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ticker: Ticker | None = None

    def start(self) -> None:
        self._ticker = Ticker(self.evaluate, self.interval, name="sagemaker-autoscaling")

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        self.wait_idle()

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Wait for scaling activities in progress (tests and shutdown)."""
        with self._lock:
            workers = [state.worker for state in self._state.values() if state.worker is not None]
        for worker in workers:
            worker.join(timeout=timeout)

    def activities(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(activity) for activity in self._activities]

    def policy(self, endpoint: str, variant: str) -> TargetTracking | None:
        client = self._clients("application-autoscaling")
        rid = resource_id(endpoint, variant)
        targets = client.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[rid], ScalableDimension=SCALABLE_DIMENSION
        )["ScalableTargets"]
        if not targets:
            return None
        target = targets[0]
        policies = client.describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION
        )["ScalingPolicies"]
        for policy in policies:
            config = policy.get("TargetTrackingScalingPolicyConfiguration")
            if policy.get("PolicyType") != "TargetTrackingScaling" or not config:
                continue
            predefined = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
            custom = config.get("CustomizedMetricSpecification", {}).get("MetricName")
            if predefined != PREDEFINED_METRIC and custom != "InvocationsPerInstance":
                continue
            return TargetTracking(
                min_capacity=int(target["MinCapacity"]),
                max_capacity=int(target["MaxCapacity"]),
                target=float(config["TargetValue"]),
                scale_out_cooldown=float(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN_SECONDS)),
                scale_in_cooldown=float(config.get("ScaleInCooldown", DEFAULT_COOLDOWN_SECONDS)),
                disable_scale_in=bool(config.get("DisableScaleIn", False)),
                policy_name=str(policy["PolicyName"]),
            )
        return None

    def evaluate(self) -> None:
        for endpoint in self._endpoints.endpoints():
            if endpoint.status != "InService":
                continue
            for variant_name in list(endpoint.variants):
                self._evaluate_variant(endpoint, variant_name)

    def _evaluate_variant(self, endpoint: Endpoint, variant_name: str) -> None:
        key = resource_id(endpoint.name, variant_name)
        with self._lock:
            state = self._state.setdefault(key, _VariantState())
            if state.worker is not None and state.worker.is_alive():
                return
        policy = self.policy(endpoint.name, variant_name)
        if policy is None:
            return
        variant = endpoint.variants.get(variant_name)
        if variant is None:
            return
        current = len(variant.fleet.instances)
        invocations = variant.metrics.rate(self.window)
        per_minute = invocations / self.window * 60.0 / max(current, 1)
        desired = desired_capacity(current, per_minute, policy)
        now = self._clock()
        if desired > current:
            if now - state.last_scale_out < policy.scale_out_cooldown:
                return
            direction = "out"
        elif desired < current:
            if policy.disable_scale_in or now - state.last_activity < policy.scale_in_cooldown:
                return
            direction = "in"
        else:
            return
        cause = (
            f"monitor alarm TargetTracking-{key}-Alarm{'High' if direction == 'out' else 'Low'} "
            "in state ALARM "
            f"triggered policy {policy.policy_name}: {PREDEFINED_METRIC}={per_minute:.1f}/min/instance "
            f"(target {policy.target:g})"
        )
        activity: dict[str, Any] = {
            "ActivityId": str(uuid.uuid4()),
            "ServiceNamespace": "sagemaker",
            "ResourceId": key,
            "ScalableDimension": SCALABLE_DIMENSION,
            "Description": f"Setting desired instance count to {desired}.",
            "Cause": cause,
            "StartTime": utcnow(),
            "StatusCode": "InProgress",
            "FromCapacity": current,
            "ToCapacity": desired,
        }
        with self._lock:
            self._activities.append(activity)
            if direction == "out":
                state.last_scale_out = now
            state.last_activity = now

        def run() -> None:
            try:
                done = self._endpoints.scale_variant(endpoint, variant_name, desired)
                ok = done and len(variant.fleet.instances) == desired
                status, message = ("Successful", f"Successfully set desired instance count to {desired}.")
                if not ok:
                    status = "Failed"
                    message = endpoint.failure_reason or "the endpoint was busy with another deployment"
            except Exception as error:  # recorded, never raised into the scaler loop
                status, message = "Failed", str(error)
            with self._lock:
                activity.update(StatusCode=status, StatusMessage=message, EndTime=utcnow())
                # Cooldowns run from the end of the activity, when the capacity is in service.
                finished = self._clock()
                if direction == "out":
                    state.last_scale_out = finished
                state.last_activity = finished

        worker = threading.Thread(target=run, name=f"scale-{key}", daemon=True)
        with self._lock:
            state.worker = worker
        worker.start()
