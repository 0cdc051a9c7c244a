"""Local SageMaker endpoints: real `dogbreed serve` fleets over model.tar.gz from S3 (moto server),
boto3 sagemaker-runtime through the local runtime API, blue/green updates under a concurrent request
stream, a failed update, error shapes, CloudWatch metrics and target-tracking auto scaling."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from model_monitor.capture import parse_lines
from PIL import Image

from dogbreed.local.sagemaker import LocalSageMaker
from tests.integration.local_sagemaker_support import (
    BUCKET,
    ROLE,
    client_factory,
    moto_server,
    runtime_client,
    upload_model,
    wait_for,
)

pytestmark = pytest.mark.slow

VARIANT = "AllTraffic"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"


def _jpeg(class_index: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, size=(48, 48, 3))
    image[..., class_index] += 150
    buffer = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _versioned_copy(model_dir: Path, target: Path, version: str) -> Path:
    shutil.copytree(model_dir, target)
    config = json.loads((target / "model_config.json").read_text())
    config["model_version"] = version
    (target / "model_config.json").write_text(json.dumps(config))
    return target


@pytest.fixture(scope="module")
def env(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("local-sm-endpoints")
    with moto_server() as url:
        clients = client_factory(url)
        s3 = clients("s3")
        s3.create_bucket(Bucket=BUCKET)
        uris = {
            "v1": upload_model(s3, tiny_model_dir, "models/v1/model.tar.gz"),
            "v2": upload_model(
                s3, _versioned_copy(tiny_model_dir, root / "v2", "tiny-test-2"), "models/v2/model.tar.gz"
            ),
        }
        broken = root / "broken"
        broken.mkdir()
        (broken / "classes.json").write_text('["a"]')
        uris["broken"] = upload_model(s3, broken, "models/broken/model.tar.gz")
        backend = LocalSageMaker(
            root / "state",
            clients=clients,
            autoscaling_interval_seconds=0.5,
            scaling_window_seconds=3.0,
            instance_max_concurrency=4,
        )
        for name, uri in uris.items():
            backend.create_model(
                ModelName=f"model-{name}",
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": uri},
                ExecutionRoleArn=ROLE,
            )
        runtime = runtime_client(backend.runtime_url, read_timeout=60)
        try:
            yield {"backend": backend, "clients": clients, "runtime": runtime}
        finally:
            pids = backend.processes.all_pids()
            backend.shutdown()
            assert pids
            assert backend.processes.alive_pids() == []


def _config(backend: LocalSageMaker, name: str, model: str, count: int = 1) -> str:
    backend.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": model,
                "InitialInstanceCount": count,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    return name


def _wait_status(backend: LocalSageMaker, endpoint: str, timeout: float = 180) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (d := backend.describe_endpoint(EndpointName=endpoint))["EndpointStatus"]
            not in ("Creating", "Updating")
            and d
        ),
        timeout=timeout,
        what=f"{endpoint} to settle",
    )


def _predict(runtime: Any, endpoint: str, class_index: int = 0) -> dict[str, Any]:
    response = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="image/jpeg", Accept="application/json", Body=_jpeg(class_index)
    )
    assert response["InvokedProductionVariant"] == VARIANT
    return json.loads(response["Body"].read())


@pytest.fixture(scope="module")
def endpoint(env: dict[str, Any]) -> str:
    backend = env["backend"]
    _config(backend, "config-v1", "model-v1", count=2)
    backend.create_endpoint(EndpointName="dogs", EndpointConfigName="config-v1")
    assert backend.describe_endpoint(EndpointName="dogs")["EndpointStatus"] == "Creating"
    described = _wait_status(backend, "dogs")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return "dogs"


def test_endpoint_serves_predictions_through_boto3(env: dict[str, Any], endpoint: str) -> None:
    backend, runtime = env["backend"], env["runtime"]
    described = backend.describe_endpoint(EndpointName=endpoint)
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    for class_index, breed in enumerate(("Red_setter", "Green_hound", "Blue_heeler")):
        answer = _predict(runtime, endpoint, class_index)
        assert answer["model_version"] == "tiny-test-1"
        assert answer["predictions"][0]["breed"] == breed
    for _ in range(3):
        _predict(runtime, endpoint)
    # Round robin: both instances served requests
    variant = backend.status()["fleets"][0]["Variants"][0]
    assert all(instance["served"] >= 2 for instance in variant["Instances"])
    # Per-variant metrics in CloudWatch under AWS/SageMaker
    backend.publish_metrics()
    cloudwatch = env["clients"]("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT}]

    def stat(metric: str, statistic: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=dims,
            StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=1),
            Period=60,
            Statistics=[statistic],
        )["Datapoints"]
        return sum(point[statistic] for point in points)

    assert stat("Invocations", "Sum") >= 6
    assert stat("ModelLatency", "SampleCount") >= 6
    assert stat("Invocation5XXErrors", "Sum") == 0


def test_runtime_errors_use_sagemaker_shapes(env: dict[str, Any], endpoint: str) -> None:
    backend, runtime = env["backend"], env["runtime"]
    with pytest.raises(runtime.exceptions.ValidationError) as unknown:
        runtime.invoke_endpoint(EndpointName="nope", ContentType="image/jpeg", Body=b"x")
    assert "nope" in unknown.value.response["Error"]["Message"]
    with pytest.raises(runtime.exceptions.ModelError) as model_error:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/jpeg", Body=b"not an image")
    error = model_error.value.response
    assert 400 <= error["OriginalStatusCode"] < 500
    assert error["OriginalMessage"]
    assert error["Error"]["Message"].startswith(f"Received client error ({error['OriginalStatusCode']})")
    backend.router.max_concurrency = 0  # every instance "busy": the endpoint is overloaded
    try:
        with pytest.raises(ClientError) as throttled:
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/jpeg", Body=_jpeg(0))
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    finally:
        backend.router.max_concurrency = 4
    # The in-process API raises the same errors
    with pytest.raises(ClientError) as in_process:
        backend.invoke_endpoint(EndpointName="nope", ContentType="image/jpeg", Body=b"x")
    assert in_process.value.response["Error"]["Code"] == "ValidationError"


class _Stream:
    """Concurrent invocations until stopped; records every answer's model version or error."""

    def __init__(self, runtime: Any, endpoint: str, threads: int = 3) -> None:
        self.runtime, self.endpoint = runtime, endpoint
        self.results: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                version = _predict(self.runtime, self.endpoint, index % 3)["model_version"]
                with self._lock:
                    self.results.append((time.monotonic(), version))
            except Exception as error:
                with self._lock:
                    self.errors.append(repr(error))
            time.sleep(0.02)

    def __enter__(self) -> _Stream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def test_update_endpoint_is_blue_green_without_a_failed_request(env: dict[str, Any], endpoint: str) -> None:
    backend, runtime = env["backend"], env["runtime"]
    old_pids = [i["pid"] for i in backend.status()["fleets"][0]["Variants"][0]["Instances"]]
    _config(backend, "config-v2", "model-v2", count=1)
    with _Stream(runtime, endpoint) as stream:
        time.sleep(0.5)
        backend.update_endpoint(EndpointName=endpoint, EndpointConfigName="config-v2")
        assert backend.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"
        described = _wait_status(backend, endpoint)
        switched = time.monotonic()
        wait_for(
            lambda: len([r for r in stream.results if r[0] > switched + 0.5]) >= 5, timeout=60, what="traffic"
        )
    assert stream.errors == []
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "config-v2"
    assert "FailureReason" not in described
    versions = [version for _, version in stream.results]
    assert "tiny-test-1" in versions and "tiny-test-2" in versions
    # After the switch (and the old fleet's drain) only the new model answers
    assert {version for stamp, version in stream.results if stamp > switched + 0.5} == {"tiny-test-2"}
    wait_for(
        lambda: not set(old_pids) & set(backend.processes.alive_pids()), timeout=30, what="old fleet to stop"
    )


def test_failed_update_keeps_the_old_model_serving(env: dict[str, Any], endpoint: str) -> None:
    backend, runtime = env["backend"], env["runtime"]
    before = backend.describe_endpoint(EndpointName=endpoint)
    serving = _predict(runtime, endpoint)["model_version"]
    _config(backend, "config-broken", "model-broken", count=1)
    with _Stream(runtime, endpoint, threads=2) as stream:
        backend.update_endpoint(EndpointName=endpoint, EndpointConfigName="config-broken")
        described = _wait_status(backend, endpoint)
    assert stream.errors == []
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == before["EndpointConfigName"]
    assert "did not pass the ping health check" in described["FailureReason"]
    assert stream.results and {version for _, version in stream.results} == {serving}
    assert _predict(runtime, endpoint)["model_version"] == serving


def test_an_endpoint_whose_model_cannot_start_fails_with_a_reason(env: dict[str, Any]) -> None:
    backend = env["backend"]
    _config(backend, "config-broken-create", "model-broken", count=1)
    backend.create_endpoint(EndpointName="broken", EndpointConfigName="config-broken-create")
    described = _wait_status(backend, "broken")
    assert described["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in described["FailureReason"]
    with pytest.raises(env["runtime"].exceptions.ValidationError):
        env["runtime"].invoke_endpoint(EndpointName="broken", ContentType="image/jpeg", Body=_jpeg(0))
    backend.delete_endpoint(EndpointName="broken")


def test_a_crashed_instance_is_replaced(env: dict[str, Any], endpoint: str) -> None:
    backend, runtime = env["backend"], env["runtime"]
    [before] = backend.status()["fleets"][0]["Variants"][0]["Instances"]
    os.killpg(before["pid"], signal.SIGKILL)

    def replaced() -> bool:
        instances = backend.status()["fleets"][0]["Variants"][0]["Instances"]
        return len(instances) == 1 and instances[0]["pid"] != before["pid"]

    wait_for(replaced, timeout=120, what="a replacement instance")
    assert _predict(runtime, endpoint)["model_version"] == "tiny-test-2"
    described = backend.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1


def test_auto_scaling_follows_the_load(env: dict[str, Any]) -> None:
    backend, runtime = env["backend"], env["runtime"]
    _config(backend, "config-scaling", "model-v1", count=1)
    backend.create_endpoint(EndpointName="scaled", EndpointConfigName="config-scaling")
    assert _wait_status(backend, "scaled")["EndpointStatus"] == "InService"
    autoscaling = env["clients"]("application-autoscaling")
    resource = f"endpoint/scaled/variant/{VARIANT}"
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    autoscaling.put_scaling_policy(
        PolicyName="invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 60.0,  # invocations per instance per minute
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleOutCooldown": 1,
            "ScaleInCooldown": 2,
        },
    )

    def count() -> int:
        variant = backend.describe_endpoint(EndpointName="scaled")["ProductionVariants"][0]
        return int(variant["CurrentInstanceCount"])

    with _Stream(runtime, "scaled", threads=2) as stream:
        wait_for(lambda: count() == 2, timeout=120, what="scale out")
    assert stream.errors == []
    wait_for(lambda: count() == 1, timeout=120, what="scale in")

    def activities() -> list[dict[str, Any]]:
        return [a for a in backend.status()["scaling_activities"] if a["ResourceId"] == resource]

    wait_for(
        lambda: all(a["StatusCode"] != "InProgress" for a in activities()), timeout=60, what="activities"
    )
    recorded = activities()
    assert [(a["FromCapacity"], a["ToCapacity"]) for a in recorded] == [(1, 2), (2, 1)]
    assert all(a["StatusCode"] == "Successful" for a in recorded)
    backend.delete_endpoint(EndpointName="scaled")
    with pytest.raises(ClientError):
        backend.describe_endpoint(EndpointName="scaled")


def test_data_capture_writes_sagemakers_capture_files_that_the_monitor_parses(env: dict[str, Any]) -> None:
    backend, runtime = env["backend"], env["runtime"]
    backend.create_endpoint_config(
        EndpointConfigName="config-captured",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": "model-v1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/data-capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        },
    )
    backend.create_endpoint(EndpointName="captured", EndpointConfigName="config-captured")
    assert _wait_status(backend, "captured")["EndpointStatus"] == "InService"
    hours = {dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")}
    sent = [_jpeg(class_index, seed=5) for class_index in range(3)]
    for body in sent:
        runtime.invoke_endpoint(EndpointName="captured", ContentType="image/jpeg", Body=body)
    backend.capture.flush()

    s3 = env["clients"]("s3")
    hours.add(dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H"))
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"data-capture/captured/{VARIANT}/")["Contents"]
    records = []
    for item in listed:
        assert item["Key"].split("/", 3)[3].rsplit("/", 1)[0] in hours
        assert item["Key"].endswith(".jsonl")
        text = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode()
        parsed = parse_lines(text.splitlines(), source=item["Key"])
        assert parsed.errors == []
        records.extend(parsed.records)
    assert len(records) == 3
    assert sorted(record.endpoint_input.body() for record in records if record.endpoint_input) == sorted(sent)
    for record in records:
        assert record.endpoint_input is not None and record.endpoint_input.encoding == "BASE64"
        assert record.endpoint_output is not None and record.endpoint_output.encoding == "JSON"
        assert json.loads(record.endpoint_output.body())["model_version"] == "tiny-test-1"
    backend.delete_endpoint(EndpointName="captured")
