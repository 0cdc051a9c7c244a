"""The demo's "safe rollout" step: two more runs of the pipeline on the same data, under API traffic.

- The second run deploys through a canary: the stack's RolloutTrafficRouting=CANARY moves half of
  the two instances' traffic to the new model, bakes under the rollback alarms, then moves the rest.
- The third run's candidate is broken (the `endpoint_update` fault: its model server answers every
  invocation with a 500). The 5xx rollback alarm fires during the bake, SageMaker sends all traffic
  back, and the run ends as `DeploymentRolledBack` while the old model keeps answering.

The runs reach the endpoint because the demo's stack sets TuningRandomSeed: the same data gets the
same hyperparameters, so each candidate ties production and passes the gate (>= production).
Requests go to POST /predictions from the moment the endpoint starts updating until the run ends;
every answer is counted, and each 201's prediction is looked up in DynamoDB.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from dogbreed.local.cloud.demo_pipeline import follow_execution, start_run
from dogbreed.local.cloud.fault_client import FaultClient
from dogbreed.local.cloud.state import CloudState

# What the demo's stack sets for these scenes (the template's defaults are the AWS ones): a canary
# needs two instances (the template's GuardedRolloutNeedsTwoInstances rule).
ROLLOUT_PARAMETERS: Final = (
    "TuningRandomSeed=0",
    "EndpointMinInstances=2",
    "RolloutTrafficRouting=CANARY",
    "RolloutStepPercent=50",
)
TRAFFIC_THREADS: Final = 2
AFTER_SECONDS: Final = 2.0  # requests after the run ended: who answers now


@dataclass
class Answer:
    at: float
    status: int
    model_version: str | None
    prediction_id: str | None


@dataclass
class ApiTraffic:
    """POST /predictions in a few threads, from when `start_when()` first holds until stopped."""

    api_url: str
    images: list[bytes]
    start_when: Callable[[], bool]
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _post(self, index: int) -> Answer:
        try:
            response = httpx.post(
                f"{self.api_url}/predictions",
                content=self.images[index % len(self.images)],
                headers={"Content-Type": "image/jpeg"},
                timeout=60,
            )
        except httpx.HTTPError:
            return Answer(time.monotonic(), 0, None, None)
        json_body = response.headers.get("content-type", "").startswith("application/json")
        body = response.json() if json_body else {}
        status = response.status_code
        return Answer(time.monotonic(), status, body.get("model_version"), body.get("prediction_id"))

    def _run(self, offset: int) -> None:
        while not self._stop.is_set() and not self.start_when():
            self._stop.wait(0.5)
        index = offset
        while not self._stop.is_set():
            answer = self._post(index)
            index += TRAFFIC_THREADS
            with self._lock:
                self.answers.append(answer)

    def __enter__(self) -> ApiTraffic:
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"demo-traffic-{i}", daemon=True)
            for i in range(TRAFFIC_THREADS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def _endpoint_updating(state: CloudState) -> Callable[[], bool]:
    sagemaker = state.client("sagemaker")
    name = state.outputs["EndpointName"]

    def check() -> bool:
        try:
            return bool(sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating")
        except Exception:  # not there yet, or the cloud is busy: ask again
            return False

    return check


def stored_count(dynamodb: Any, table: str, prediction_ids: list[str]) -> int:
    """How many of the predictions the API answered 201 for are in the Predictions table."""
    return sum(
        1
        for prediction_id in prediction_ids
        if "Item"
        in dynamodb.get_item(
            TableName=table, Key={"prediction_id": {"S": prediction_id}}, ConsistentRead=True
        )
    )


def run_under_traffic(
    state: CloudState, dataset: Path, dataset_id: str, images: list[bytes], timeout: float
) -> dict[str, Any]:
    """One pipeline run on `dataset` with API requests while the endpoint updates; what happened."""
    sfn, s3, dynamodb = state.client("stepfunctions"), state.client("s3"), state.client("dynamodb")
    outputs = state.outputs
    started = time.monotonic()
    execution_arn = start_run(s3, sfn, outputs, dataset, dataset_id)
    with ApiTraffic(state.api_url, images, _endpoint_updating(state)) as traffic:
        described = follow_execution(sfn, state, execution_arn, timeout)
        ended = time.monotonic()
        time.sleep(AFTER_SECONDS)
    answers = traffic.answers
    created = [a.prediction_id for a in answers if a.status == 201 and a.prediction_id]
    after = [a.model_version for a in answers if a.at > ended and a.status == 201]
    return {
        "execution_status": described.get("status"),
        "output": json.loads(described.get("output") or "{}"),
        "error": described.get("error"),
        "cause": described.get("cause"),
        "seconds": round(ended - started, 1),
        "answers": dict(Counter(a.model_version for a in answers if a.status == 201)),
        "failed": dict(Counter(str(a.status) for a in answers if a.status != 201)),
        "created": len(created),
        "prediction_ids": created,
        "stored": stored_count(dynamodb, outputs["PredictionsTableName"], created),
        "served_after": sorted(set(filter(None, after))),
    }


def watch_rollout(
    state: CloudState,
    make_dataset: Callable[[str], Path],
    dataset_id: str,
    images: list[bytes],
    say: Callable[[str], None],
    timeout: float,
) -> dict[str, Any]:
    """The two scenes (module docstring); `make_dataset(id)` writes the demo's dataset under an id."""
    endpoint = state.outputs["EndpointName"]
    say("second run, same data: the endpoint update goes through a canary while requests arrive")
    canary_id = f"{dataset_id}-canary"
    canary = run_under_traffic(state, make_dataset(canary_id), canary_id, images, timeout)
    say(f"  {describe(canary)}")
    say("third run, a broken candidate (fault endpoint_update server-error: its model answers 500)")
    faults = FaultClient(state)
    fault = faults.add("endpoint_update", resource=endpoint, error="server-error")
    try:
        broken_id = f"{dataset_id}-broken"
        broken = run_under_traffic(state, make_dataset(broken_id), broken_id, images, timeout)
    finally:
        faults.clear(fault["id"])
    say(f"  {describe(broken)}")
    return {"canary": canary, "broken": broken}


def describe(scene: dict[str, Any]) -> str:
    """One line on a scene: how the run ended, who answered, what failed, what was stored."""
    output = scene.get("output") or {}
    rollout = output.get("rollout") or {}
    if scene.get("execution_status") == "SUCCEEDED":
        ended = (
            f"{output.get('outcome')} {output.get('model_version')} through {rollout.get('traffic_routing')} "
            f"{rollout.get('step_percent')}% (bake {rollout.get('bake_seconds')} s)"
        )
    else:
        ended = f"{scene.get('execution_status')} {scene.get('error')}: {str(scene.get('cause'))[:240]}"
    answers = ", ".join(f"{count} by {version}" for version, count in scene["answers"].items()) or "none"
    failed = ", ".join(f"{count} x {status}" for status, count in scene["failed"].items()) or "none failed"
    return (
        f"{ended} in {scene['seconds']:.0f} s; answers {answers}; {failed}; "
        f"{scene['stored']} of {scene['created']} created predictions in DynamoDB; "
        f"serving after: {', '.join(scene['served_after']) or '-'}"
    )


def scenes_ok(scenes: dict[str, Any]) -> bool:
    """The canary deployed, the broken candidate was rolled back with the canary's model serving
    after it, and every prediction the API created is in DynamoDB."""
    canary, broken = scenes["canary"], scenes["broken"]
    deployed = canary["output"].get("model_version")
    return (
        canary["execution_status"] == "SUCCEEDED"
        and canary["output"].get("outcome") == "deployed"
        and broken["execution_status"] == "FAILED"
        and broken["error"] == "DeploymentRolledBack"
        and broken["served_after"] == [deployed]
        and all(scene["stored"] == scene["created"] for scene in (canary, broken))
    )
