"""UpdateEndpoint with deployment guardrails: the blue/green update of an endpoint, as the SageMaker
developer guide describes it ("Deployment guardrails", "Auto-Rollback Configuration and Monitoring").

The new (green) fleet starts beside the old (blue) one. Traffic then moves to it in the steps of the
`BlueGreenUpdatePolicy`'s `TrafficRoutingConfiguration`:

- `ALL_AT_ONCE`: all of it, then one baking period (`WaitIntervalInSeconds`);
- `CANARY`: the canary's share (`CanarySize`) for one baking period, then all of it;
- `LINEAR`: `LinearStepSize` more at each step, each step baking, until all of it.

A share of traffic is a share of invocations: each request goes to the new fleet with that probability
(the `Router` draws under the lock that swaps fleets). While a step bakes, the alarms of the
`AutoRollbackConfiguration` are read (`cloudwatch:DescribeAlarms`, with the new model's execution role,
as SageMaker reads them); an alarm in ALARM sends all traffic back to the old fleet, the new fleet is
drained and stopped, and the endpoint is `InService` on its old config with a `FailureReason` that
names the alarms. Without a `DeploymentConfig`, an update shifts all traffic at once with no bake
(SageMaker's default). `TerminationWaitInSeconds` keeps the idle old fleet before it is stopped, and
`MaximumExecutionTimeoutInSeconds` rolls back an update that runs longer.

Local simplifications: a capacity share is a traffic share (the new fleet is started whole, and
`CAPACITY_PERCENT` 25 sends 25 % of invocations to it; `INSTANCE_COUNT` n of N instances sends n/N);
the wording of the rollback's `FailureReason` is the local cloud's.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dogbreed.local.sagemaker._aws import ClientFactory, utcnow
from dogbreed.local.sagemaker.fleet import FleetError, ServeCommand, Variant

if TYPE_CHECKING:
    from dogbreed.local.sagemaker.endpoints import Endpoint, EndpointService

logger = logging.getLogger(__name__)

ALARM = "ALARM"
_TIMELINE_LIMIT = 500


@dataclass(frozen=True)
class Step:
    """One traffic step; every step bakes for the plan's WaitIntervalInSeconds. A canary's second
    step (all traffic) is its "final baking period" before the old fleet goes (SageMaker's canary
    traffic shifting guide)."""

    share: float  # of invocations on the new fleet


@dataclass(frozen=True)
class TrafficPlan:
    routing: str
    steps: tuple[Step, ...]
    bake_seconds: float
    termination_wait_seconds: float
    max_execution_seconds: float | None
    alarms: tuple[str, ...]


def _size_share(size: dict[str, Any], capacity: int) -> float:
    value = float(size["Value"])
    share = value / max(1, capacity) if size["Type"] == "INSTANCE_COUNT" else value / 100.0
    return min(1.0, max(0.0, share))


def traffic_plan(deployment_config: dict[str, Any] | None, capacity: int) -> TrafficPlan:
    """The steps of an update to a fleet of `capacity` instances."""
    config = deployment_config or {}
    policy = config.get("BlueGreenUpdatePolicy") or {}
    routing = policy.get("TrafficRoutingConfiguration") or {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    kind = routing["Type"]
    if kind == "CANARY":
        steps: tuple[Step, ...] = (Step(_size_share(routing["CanarySize"], capacity)), Step(1.0))
    elif kind == "LINEAR":
        increment = _size_share(routing["LinearStepSize"], capacity) or 1.0
        count = math.ceil(round(1.0 / increment, 9))
        steps = tuple(Step(min(1.0, increment * index)) for index in range(1, count + 1))
    else:
        steps = (Step(1.0),)
    alarms = tuple(
        alarm["AlarmName"] for alarm in (config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])
    )
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    return TrafficPlan(
        routing=kind,
        steps=steps,
        bake_seconds=float(routing.get("WaitIntervalInSeconds", 0)),
        termination_wait_seconds=float(policy.get("TerminationWaitInSeconds", 0)),
        max_execution_seconds=float(timeout) if timeout else None,
        alarms=alarms,
    )


@dataclass
class Rollout:
    """An update in progress: what DescribeEndpoint's PendingDeploymentSummary shows, and its timeline."""

    config_name: str
    specs: list[dict[str, Any]]
    plan: TrafficPlan
    started: datetime = field(default_factory=utcnow)
    variants: dict[str, Variant] = field(default_factory=dict)
    share: float = 0.0
    stage: str = "Creating"
    message: str = "starting the new fleet"
    stage_since: datetime = field(default_factory=utcnow)
    alarm_states: dict[str, str] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "in progress"
    _clock_zero: float = field(default_factory=time.monotonic)

    def routes_to_new(self) -> bool:
        """Whether this request goes to the new fleet (the caller holds the routing lock)."""
        if not self.variants or self.share <= 0:
            return False
        return self.share >= 1 or random.random() < self.share  # noqa: S311  # nosec B311 - traffic split

    def enter(self, stage: str, message: str, share: float | None = None) -> None:
        """A new stage (the caller holds the endpoint service's lock)."""
        if share is not None:
            self.share = share
        self.stage, self.message, self.stage_since = stage, message, utcnow()
        self.note(message)

    def note(self, event: str) -> None:
        if len(self.timeline) < _TIMELINE_LIMIT:
            self.timeline.append(
                {
                    "seconds": round(time.monotonic() - self._clock_zero, 1),
                    "stage": self.stage,
                    "new_fleet_share": round(self.share, 3),
                    "alarms": dict(self.alarm_states),
                    "event": event,
                }
            )

    def summary(self) -> dict[str, Any]:
        """botocore's PendingDeploymentSummary."""
        variants = []
        for spec in self.specs:
            variant = self.variants.get(spec["VariantName"])
            entry: dict[str, Any] = {
                "VariantName": spec["VariantName"],
                "DeployedImages": [{"SpecifiedImage": variant.image, "ResolvedImage": variant.image}]
                if variant is not None and variant.image
                else [],
                "CurrentWeight": float(spec.get("InitialVariantWeight", 1.0)),
                "DesiredWeight": float(spec.get("InitialVariantWeight", 1.0)),
                "CurrentInstanceCount": len(variant.fleet.instances) if variant is not None else 0,
                "DesiredInstanceCount": int(spec.get("InitialInstanceCount", 1)),
                "VariantStatus": [
                    {"Status": self.stage, "StatusMessage": self.message, "StartTime": self.stage_since}
                ],
            }
            if "InstanceType" in spec:
                entry["InstanceType"] = spec["InstanceType"]
            variants.append(entry)
        return {
            "EndpointConfigName": self.config_name,
            "ProductionVariants": variants,
            "StartTime": self.started,
        }

    def status(self) -> dict[str, Any]:
        """The emulator's view: the traffic split and the timeline, beyond DescribeEndpoint."""
        return {
            "EndpointConfigName": self.config_name,
            "TrafficRouting": self.plan.routing,
            "NewFleetTrafficShare": round(self.share, 3),
            "Stage": self.stage,
            "Message": self.message,
            "Alarms": dict(self.alarm_states),
            "Outcome": self.outcome,
            "Variants": [variant.status() for variant in self.variants.values()],
            "Timeline": list(self.timeline),
        }


def alarm_states(clients: ClientFactory, names: tuple[str, ...]) -> dict[str, str]:
    """Alarm name -> state of the rollback alarms (a missing alarm is reported as such)."""
    found: dict[str, str] = {}
    for start in range(0, len(names), 100):
        response = clients("cloudwatch").describe_alarms(AlarmNames=list(names[start : start + 100]))
        found.update({alarm["AlarmName"]: alarm["StateValue"] for alarm in response.get("MetricAlarms", [])})
    return {name: found.get(name, "MISSING") for name in names}


def _percent(share: float) -> str:
    return f"{share * 100:g}%"


class BlueGreenUpdate:
    """One UpdateEndpoint, run in the endpoint service's worker thread (holding the endpoint's busy lock)."""

    def __init__(
        self,
        service: EndpointService,
        endpoint: Endpoint,
        config: dict[str, Any],
        deployment_config: dict[str, Any] | None,
        *,
        serve_command: ServeCommand | None,
        alarm_clients: Callable[[], ClientFactory],
        poll_seconds: float,
    ) -> None:
        self._service = service
        self._endpoint = endpoint
        self._config = config
        self._alarm_clients = alarm_clients
        self._poll = poll_seconds
        self._serve_command = serve_command
        specs = list(config["ProductionVariants"])
        capacity = sum(int(spec.get("InitialInstanceCount", 1)) for spec in specs)
        self.plan = traffic_plan(deployment_config, capacity)
        self.rollout = Rollout(config_name=config["EndpointConfigName"], specs=specs, plan=self.plan)

    def run(self) -> None:
        service, endpoint, rollout = self._service, self._endpoint, self.rollout
        timeout = self.plan.max_execution_seconds
        deadline = time.monotonic() + timeout if timeout else None
        with service.lock:
            endpoint.pending = rollout
            endpoint.last_rollout = rollout
            rollout.note("update started")
        deployment = f"deployment-{int(time.time() * 1000)}"
        try:
            variants = service.build_variants(endpoint, self._config, deployment, self._serve_command)
        except FleetError as error:
            # SageMaker keeps the old fleet serving and reports the failed update on the endpoint.
            self._finish("failed", str(error))
            return
        with service.lock:
            for name, variant in variants.items():
                if name in endpoint.variants:  # one metric stream per variant, both fleets in it
                    variant.metrics = endpoint.variants[name].metrics
            rollout.variants = variants
        for step in self.plan.steps:
            with service.lock:
                rollout.enter(
                    "ActivatingTraffic", f"{_percent(step.share)} of traffic on the new fleet", step.share
                )
            bake = self.plan.bake_seconds
            if bake > 0:
                with service.lock:
                    rollout.enter(
                        "Baking", f"{_percent(step.share)} of traffic on the new fleet; baking {bake:g} s"
                    )
            reason = self._bake(bake, deadline)
            if reason is not None:
                self._roll_back(variants, reason)
                return
        self._complete(variants)

    # ----------------------------------------------------------------- stages

    def _bake(self, seconds: float, deadline: float | None) -> str | None:
        """Watch the rollback alarms for `seconds`; the reason to roll back, or None."""
        end = time.monotonic() + seconds
        while True:
            reason = self._check_alarms()
            if reason is not None:
                return reason
            if self._service.closing.is_set() or self._endpoint.deleted:
                return "the endpoint was deleted or the service stopped during the deployment"
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return (
                    f"the deployment exceeded MaximumExecutionTimeoutInSeconds "
                    f"({self.plan.max_execution_seconds:g} s)"
                )
            if now >= end:
                return None
            time.sleep(min(self._poll, end - now))

    def _check_alarms(self) -> str | None:
        if not self.plan.alarms:
            return None
        rollout = self.rollout
        try:
            states = alarm_states(self._alarm_clients(), self.plan.alarms)
        except Exception as error:
            return f"the rollback alarms could not be read: {error}"
        with self._service.lock:
            if states != rollout.alarm_states:
                rollout.alarm_states = states
                rollout.note("alarm state changed")
        firing = [name for name, state in states.items() if state == ALARM]
        if not firing:
            return None
        return (
            f"CloudWatch alarm(s) {', '.join(firing)} in ALARM while {_percent(rollout.share)} of traffic "
            f"was on the new fleet"
        )

    def _roll_back(self, variants: dict[str, Variant], reason: str) -> None:
        service, endpoint, rollout = self._service, self._endpoint, self.rollout
        with service.lock:  # from here on every new request goes to the old fleet
            rollout.enter("Deleting", f"rolling back: {reason}", 0.0)
        logger.warning(
            "endpoint %s: update to %s rolled back: %s", endpoint.name, rollout.config_name, reason
        )
        service.stop_variants(variants)  # each instance drains its in-flight requests first
        self._finish(
            "rolled back",
            f"Deployment of endpoint configuration {rollout.config_name} was rolled back to "
            f"{endpoint.config_name}: {reason}.",
        )

    def _complete(self, variants: dict[str, Variant]) -> None:
        service, endpoint, rollout = self._service, self._endpoint, self.rollout
        with service.lock:
            if endpoint.deleted or service.closing.is_set():
                old = variants
            else:
                old = endpoint.variants
                endpoint.variants = variants
                endpoint.config_name = rollout.config_name
        if self.plan.termination_wait_seconds > 0 and old is not variants:
            service.closing.wait(self.plan.termination_wait_seconds)
        service.stop_variants(old)
        self._finish("deployed", None)

    def _finish(self, outcome: str, failure_reason: str | None) -> None:
        with self._service.lock:
            self.rollout.outcome = outcome
            self.rollout.note(f"update {outcome}")
            self._endpoint.pending = None
            self._endpoint.settle("InService", failure_reason)
