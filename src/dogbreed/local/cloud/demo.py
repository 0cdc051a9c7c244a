"""`dogbreed local demo` (what `make demo` runs): the whole product on the local cloud.

up (if needed) -> deploy template.yaml (tiny local parameters) -> synthesize a dataset, upload the
training code and the dataset with manifest.json last (the trigger) -> follow the execution state by
state (tuning trials with metrics, training, gate, endpoint, scaling) -> drop sample images and one
bad file into incoming/ -> call POST /predictions (base64 JSON and a binary body) -> summary.

-> watch the model (drift) -> safe rollout: a second run deploys through a canary, a third run's
broken candidate is rolled back by the 5xx alarm (demo_rollout.py) -> summary.

The demo's cloud evaluates alarms on periods scaled by DEMO_METRIC_PERIOD_SCALE (a 5-minute period
is 15 s), so an alarm fires within a short bake.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.server
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.demo_drift import watch_drift
from dogbreed.local.cloud.demo_pipeline import follow_execution, pack_sourcedir, start_run
from dogbreed.local.cloud.demo_rollout import ROLLOUT_PARAMETERS, describe, scenes_ok, watch_rollout
from dogbreed.report import write_report


def register(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    demo = commands.add_parser("demo", help="the whole pipeline on the local cloud (make demo)")
    common(demo)
    demo.add_argument(
        "--port", type=int, default=cloud_state.DEFAULT_AWS_PORT, help="AWS APIs (default 4566)"
    )
    demo.add_argument(
        "--api-port", type=int, default=cloud_state.DEFAULT_API_PORT, help="HTTP API (default 3000)"
    )
    demo.add_argument("--classes", type=int, default=4, help="breeds in the synthetic dataset (default 4)")
    demo.add_argument("--per-class", type=int, default=24, help="training images per breed (default 24)")
    demo.add_argument("--size", type=int, default=64, help="synthetic image side in px (default 64)")
    demo.add_argument("--timeout", type=float, default=840.0, help="seconds to wait for the pipeline")
    demo.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    demo.add_argument("--json-summary", type=Path, default=None, help="also write the summary as JSON here")
    demo.add_argument(
        "--no-rollout",
        dest="rollout",
        action="store_false",
        help="leave out the safe-rollout step (its two more pipeline runs)",
    )
    demo.set_defaults(handler=run_demo)


def _say(text: str) -> None:
    print(text, flush=True)


DEMO_METRIC_PERIOD_SCALE = 0.05
STEPS = 9


def _step(number: int, title: str) -> None:
    _say(f"\n== [{number}/{STEPS}] {title}")


@dataclass
class DemoResult:
    execution_arn: str = ""
    execution_status: str = ""
    execution_output: dict[str, Any] = field(default_factory=dict)
    dataset_id: str = ""
    results: dict[str, str] = field(default_factory=dict)  # incoming key -> results/ or rejected/ key
    rejected: dict[str, Any] = field(default_factory=dict)
    api_responses: list[dict[str, Any]] = field(default_factory=list)
    batch: dict[str, Any] = field(default_factory=dict)  # the batch's execution output (its summary)
    endpoint_latency_ms: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)  # the monitor's summaries and the alarm states
    rollout: dict[str, Any] = field(default_factory=dict)  # the canary and broken-candidate runs


def _sample_images(dataset: Path, count: int) -> list[Path]:
    test = sorted((dataset / "test").rglob("*.jpg"))
    step = max(1, len(test) // count)
    return test[::step][:count]


def _wait_for_results(s3: Any, bucket: str, keys: list[str], timeout: float = 120) -> dict[str, str]:
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(found) < len(keys):
        for key in keys:
            if key in found:
                continue
            relative = key.removeprefix("incoming/")
            for prefix in ("results/", "rejected/"):
                candidate = f"{prefix}{relative}.json"
                try:
                    s3.head_object(Bucket=bucket, Key=candidate)
                except s3.exceptions.ClientError:
                    continue
                found[key] = candidate
        time.sleep(0.5)
    return found


@contextlib.contextmanager
def loopback_image_server(image: bytes) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 serving `image` at /dog.jpg (the JSON {"url": ...} input)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/dog.jpg":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dog.jpg"
    finally:
        server.shutdown()
        server.server_close()


def run_demo(args: argparse.Namespace) -> int:
    from dogbreed.local.cloud.lifecycle import deploy_stack, parse_overrides, running_state, start_cloud

    started = time.monotonic()
    result = DemoResult()
    state_dir: Path = args.state_dir.resolve()
    overrides = [*ROLLOUT_PARAMETERS, *args.parameter_overrides]

    _step(1, "local cloud: moto (Step Functions interpreter), local SageMaker, HTTP API")
    state = running_state(state_dir)
    if state is None:
        state = start_cloud(
            state_dir,
            aws_port=args.port,
            api_port=args.api_port,
            overrides=overrides,
            metric_period_scale=DEMO_METRIC_PERIOD_SCALE,
        )
        _say(f"started (pid {state.pid}): AWS {state.aws_url}, API {state.api_url}")
    else:
        _say(f"already up (pid {state.pid}): AWS {state.aws_url}, API {state.api_url}")
    deployed = deploy_stack(state, parse_overrides(overrides))
    state = running_state(state_dir) or state
    _say(f"deployed template.yaml: created {deployed['created'] or 'nothing'}, updated {deployed['updated']}")
    outputs = state.outputs
    session = cloud_state.local_session()
    s3 = session.client("s3", endpoint_url=state.aws_url)
    sfn = session.client("stepfunctions", endpoint_url=state.aws_url)
    dynamodb = session.client("dynamodb", endpoint_url=state.aws_url)
    result.seconds["up_and_deploy"] = time.monotonic() - started

    _step(
        2, f"synthesize {args.classes} breeds x {args.per_class} images and upload them (manifest.json last)"
    )
    from dogbreed.data.synth import synthesize

    result.dataset_id = f"demo-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"

    def make_dataset(dataset_id: str) -> Path:
        """The demo's dataset under `dataset_id` (the same images every time: seed 0)."""
        return synthesize(
            state_dir / "demo" / dataset_id,
            classes=args.classes,
            per_class=args.per_class,
            size=args.size,
            seed=0,
            dataset_id=dataset_id,
            overwrite=True,
        )

    dataset = make_dataset(result.dataset_id)
    code_uri = outputs["TrainingCodeS3Uri"]
    code_bucket, _, code_key = code_uri.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=code_bucket, Key=code_key, Body=pack_sourcedir())
    _say(f"training code -> {code_uri}")
    result.execution_arn = start_run(s3, sfn, outputs, dataset, result.dataset_id)

    _step(3, "the training pipeline (Step Functions execution, state by state)")
    pipeline_started = time.monotonic()
    _say(f"execution {result.execution_arn.rsplit(':', 1)[-1]}")
    described = follow_execution(sfn, state, result.execution_arn, args.timeout)
    result.execution_status = described.get("status", "TIMED_OUT (demo)")
    result.execution_output = json.loads(described.get("output") or "{}")
    result.seconds["pipeline"] = time.monotonic() - pipeline_started
    _say(f"execution {result.execution_status}: {json.dumps(result.execution_output)[:600]}")
    if result.execution_status != "SUCCEEDED":
        _say(
            "dogbreed local demo: the pipeline did not succeed; see `dogbreed local status` and the log above"
        )
        return 1

    _step(4, "drop sample images and one bad file into incoming/")
    bucket = outputs["InferenceBucketName"]
    prefix = f"incoming/{result.dataset_id}"
    keys = []
    for image in _sample_images(dataset, 3):
        key = f"{prefix}/{image.parent.name}/{image.name}"
        s3.upload_file(str(image), bucket, key)
        keys.append(key)
    bad_key = f"{prefix}/not-a-dog.jpg"
    s3.put_object(Bucket=bucket, Key=bad_key, Body=b"this is not an image\n")
    keys.append(bad_key)
    result.results = _wait_for_results(s3, bucket, keys)
    for key in keys:
        _say(f"  s3://{bucket}/{key} -> {result.results.get(key, 'NO RESULT YET')}")
    if bad_key in result.results:
        result.rejected = json.loads(s3.get_object(Bucket=bucket, Key=result.results[bad_key])["Body"].read())

    _step(5, f"POST {state.api_url}/predictions (JSON URL to a loopback server, JSON base64, binary body)")
    sample = _sample_images(dataset, 1)[0].read_bytes()
    with loopback_image_server(sample) as url:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("json url", {"json": {"url": url}}),
            ("json base64", {"json": {"image": base64.b64encode(sample).decode()}}),
            ("binary image/jpeg", {"content": sample, "headers": {"Content-Type": "image/jpeg"}}),
        ]
        _post_predictions(state.api_url, calls, result)
    runtime = session.client("sagemaker-runtime", endpoint_url=state.runtime_url)
    # Five different test images: the endpoint captures them, and the drift monitor later judges
    # the window's image statistics (copies of one image would look like a shift).
    for image in _sample_images(dataset, 5):
        call_started = time.perf_counter()
        runtime.invoke_endpoint(
            EndpointName=outputs["EndpointName"], ContentType="image/jpeg", Body=image.read_bytes()
        )
        result.endpoint_latency_ms.append((time.perf_counter() - call_started) * 1000)

    from dogbreed.batch import submit as submit_batch
    from dogbreed.batch import wait_for_execution

    _step(6, f"the same files as one batch (Batch Transform): batches/{result.dataset_id}/manifest.json")
    batch_started = time.monotonic()
    submit_batch(s3, bucket, result.dataset_id, {"prefix": f"{prefix}/", "top_k": 3})
    finished = wait_for_execution(sfn, outputs["BatchTransformPipelineArn"], result.dataset_id, timeout=300)
    result.batch = json.loads(finished.get("output") or "{}") or {"error": finished.get("error")}
    result.seconds["batch"] = time.monotonic() - batch_started
    _say(f"  batch {finished['status']}: {json.dumps(result.batch)[:600]}")

    _step(7, "watch the model: data capture, the drift monitor and its alarms")
    result.drift = watch_drift(state, runtime, dataset, _say)

    if args.rollout:
        _step(8, "safe rollout: a canary that deploys, a broken candidate that is rolled back")
        rollout_started = time.monotonic()
        images = [path.read_bytes() for path in _sample_images(dataset, 6)]
        result.rollout = watch_rollout(state, make_dataset, result.dataset_id, images, _say, args.timeout)
        result.seconds["rollout"] = time.monotonic() - rollout_started

    _step(9, "summary")
    result.seconds["total"] = time.monotonic() - started
    print(render_summary(result, state, dynamodb, state.client("sagemaker")))
    report = write_report(state.client, dict(outputs), None, state_dir / "reports" / "latest.html")
    _say(f"\nreport (open it in a browser): {report.resolve()}")
    if args.json_summary:
        args.json_summary.write_text(json.dumps(vars(result), indent=2, default=str), encoding="utf-8")
    ok = (
        len(result.results) == len(keys)
        and all(r["status"] == 201 for r in result.api_responses)
        and result.batch.get("results", 0) + result.batch.get("rejected", 0) == len(keys)
        and (not args.rollout or scenes_ok(result.rollout))
    )
    return 0 if ok else 1


def _post_predictions(api_url: str, calls: list[tuple[str, dict[str, Any]]], result: DemoResult) -> None:
    for label, request in calls:
        response = httpx.post(f"{api_url}/predictions?top_k=3", timeout=60, **request)
        body = response.json()
        result.api_responses.append({"kind": label, "status": response.status_code, "body": body})
        top = (body.get("predictions") or [{}])[0]
        _say(
            f"  {label}: {response.status_code} {top.get('breed')} p={top.get('probability')} "
            f"id={body.get('prediction_id')} {body.get('error', '')}"
        )


def render_summary(result: DemoResult, state: cloud_state.CloudState, dynamodb: Any, sagemaker: Any) -> str:
    outputs = state.outputs
    output = result.execution_output
    latency = sorted(result.endpoint_latency_ms)
    package = sagemaker.describe_model_package(ModelPackageName=output["model_package"])
    run = dynamodb.get_item(TableName=outputs["RunsTableName"], Key={"run_id": {"S": output["run_id"]}})
    run_status = run.get("Item", {}).get("status", {}).get("S")
    production = output.get("production") or {}
    rollout = output.get("rollout") or {}
    predictions = [r["body"].get("prediction_id") for r in result.api_responses if r["status"] == 201]
    lines = [
        f"pipeline        {result.execution_status} ({output.get('outcome')}) "
        f"in {result.seconds.get('pipeline', 0):.0f} s, run {output.get('run_id')} "
        f"({run_status} in the runs table)",
        f"model           {output.get('model_version')} ({output.get('source')} model: "
        f"{output.get('source_reason')}) test accuracy "
        f"{output.get('test_acc')}, its trial {output.get('trial_test_acc')} "
        f"(threshold {output.get('accuracy_threshold')}, "
        f"production {production.get('model_version', 'none')} at {production.get('test_acc', '-')})",
        f"registry        {package['ModelPackageArn']}: {package['ModelApprovalStatus']} "
        f"({package.get('ApprovalDescription', '')})",
        f"endpoint        {outputs.get('EndpointName')} ({rollout.get('action')}, traffic "
        f"{rollout.get('traffic_routing')}), {output.get('endpoint_type', 'instance')}: "
        f"{output.get('scaling') or 'scaling policy ' + str(output.get('scaling_policy_arn'))}",
        f"latency         invoke_endpoint median {latency[len(latency) // 2]:.1f} ms, "
        f"max {latency[-1]:.1f} ms"
        if latency
        else "latency         -",
        "",
        "results (S3):",
        *[f"  s3://{outputs['InferenceBucketName']}/{value}" for value in result.results.values()],
        f"rejected        {result.rejected.get('source_key')}: {json.dumps(result.rejected.get('reason'))}",
        f"batch           {result.batch.get('results')} results, {result.batch.get('rejected')} rejected "
        f"in {result.seconds.get('batch', 0):.0f} s: {result.batch.get('summary_uri')}",
        *(f"{label + ' run':<16}{describe(scene)}" for label, scene in result.rollout.items()),
        "predictions (DynamoDB table " + outputs["PredictionsTableName"] + "):",
        *[f"  prediction_id={pid}" for pid in predictions],
        "",
        f"total           {result.seconds.get('total', 0):.0f} s",
        "",
        "explore with the AWS CLI:",
        '  eval "$(dogbreed local env)"',
        f"  aws s3 ls s3://{outputs['InferenceBucketName']}/ --recursive",
        f"  aws s3 cp dog.jpg s3://{outputs['InferenceBucketName']}/incoming/dog.jpg",
        f"  aws dynamodb scan --table-name {outputs['PredictionsTableName']}",
        f"  aws dynamodb scan --table-name {outputs['RunsTableName']}",
        f"  aws sagemaker list-model-packages --model-package-group-name {outputs['ModelPackageGroupName']}",
        f"  aws stepfunctions list-executions --state-machine-arn {outputs['TrainingPipelineArn']}",
        f"  aws stepfunctions get-execution-history --execution-arn {result.execution_arn}",
        "  aws application-autoscaling describe-scaling-policies --service-namespace sagemaker",
        f"  curl -s -X POST --data-binary @dog.jpg -H 'Content-Type: image/jpeg' {state.api_url}/predictions",
        "  dogbreed local status",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
