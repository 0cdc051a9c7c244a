"""Local SageMaker serverless endpoints: a ServerlessConfig variant runs no model server while idle,
starts one for the invocation that finds none (a cold start, timed), keeps it warm while requests
come, stops it after the idle time, throttles beyond MaxConcurrency, and refuses what SageMaker
refuses (memory sizes, instances and ServerlessConfig together, network isolation, an instance
endpoint updated to serverless). Models come from model.tar.gz in a moto server's S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dogbreed.bench.tiny_model import solid_color_jpeg
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

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
IDLE_SECONDS = 3.0


def _serverless(model: str, memory: int = 2048, concurrency: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": concurrency},
        **extra,
    }


@pytest.fixture(scope="module")
def env(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("local-sm-serverless")
    with moto_server() as url:
        clients = client_factory(url)
        s3 = clients("s3")
        s3.create_bucket(Bucket=BUCKET)
        upload_model(s3, tiny_model_dir, "models/tiny/model.tar.gz")
        backend = LocalSageMaker(root / "state", clients=clients, serverless_idle_seconds=IDLE_SECONDS)
        container = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/tiny/model.tar.gz"}
        backend.create_model(ModelName="open", PrimaryContainer=container, ExecutionRoleArn=ROLE)
        backend.create_model(
            ModelName="isolated",
            PrimaryContainer=container,
            ExecutionRoleArn=ROLE,
            EnableNetworkIsolation=True,
        )
        runtime = runtime_client(backend.runtime_url, read_timeout=120)
        try:
            yield {"backend": backend, "runtime": runtime}
        finally:
            backend.shutdown()


def _in_service(backend: LocalSageMaker, name: str) -> dict[str, Any]:
    described: dict[str, Any] = wait_for(
        lambda: (
            (d := backend.describe_endpoint(EndpointName=name))["EndpointStatus"]
            not in ("Creating", "Updating")
            and d
        ),
        timeout=180,
        what=f"{name} to settle",
    )
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return described


def _variant_status(backend: LocalSageMaker, name: str) -> dict[str, Any]:
    [fleet] = [f for f in backend.status()["fleets"] if f["EndpointName"] == name]
    variant: dict[str, Any] = fleet["Variants"][0]
    return variant


def _predict(runtime: Any, name: str, class_index: int) -> str:
    response = runtime.invoke_endpoint(
        EndpointName=name, ContentType="image/jpeg", Body=solid_color_jpeg(class_index)
    )
    breed: str = json.loads(response["Body"].read())["predictions"][0]["breed"]
    return breed


def test_a_serverless_endpoint_starts_a_worker_on_demand_and_stops_it_when_idle(env: dict[str, Any]) -> None:
    backend, runtime = env["backend"], env["runtime"]
    # Given a serverless endpoint, in service with no model server running
    backend.create_endpoint_config(
        EndpointConfigName="serverless-1", ProductionVariants=[_serverless("open")]
    )
    backend.create_endpoint(EndpointName="dogs-serverless", EndpointConfigName="serverless-1")
    described = _in_service(backend, "dogs-serverless")
    [summary] = described["ProductionVariants"]
    assert summary["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    assert "CurrentInstanceCount" not in summary
    assert _variant_status(backend, "dogs-serverless")["Instances"] == []

    # When it is invoked twice
    first = _predict(runtime, "dogs-serverless", 0)
    second = _predict(runtime, "dogs-serverless", 2)

    # Then the first invocation paid the one cold start, the second found the worker warm
    assert (first, second) == ("Red_setter", "Blue_heeler")
    status = _variant_status(backend, "dogs-serverless")
    assert status["Serverless"]["ColdStarts"] == 1 and status["Serverless"]["LastModelSetupSeconds"] > 0
    assert len(status["Instances"]) == 1
    print(f"local serverless cold start: {status['Serverless']['LastModelSetupSeconds']:.2f} s")
    # ... and after the idle time nothing runs, until the next invocation starts a worker again
    wait_for(
        lambda: _variant_status(backend, "dogs-serverless")["Instances"] == [],
        timeout=IDLE_SECONDS + 10,
        what="the idle worker to stop",
    )
    assert _predict(runtime, "dogs-serverless", 1) == "Green_hound"
    assert _variant_status(backend, "dogs-serverless")["Serverless"]["ColdStarts"] == 2


def test_invocations_beyond_max_concurrency_are_throttled(env: dict[str, Any]) -> None:
    backend, runtime = env["backend"], env["runtime"]
    backend.create_endpoint_config(
        EndpointConfigName="serverless-one", ProductionVariants=[_serverless("open", concurrency=1)]
    )
    backend.create_endpoint(EndpointName="dogs-one", EndpointConfigName="serverless-one")
    _in_service(backend, "dogs-one")
    _predict(runtime, "dogs-one", 0)  # warm

    # When MaxConcurrency=1 invocation is in flight (a lease held on the worker) and another arrives
    lease = backend.router.acquire("dogs-one")
    try:
        with pytest.raises(ClientError) as throttled:
            _predict(runtime, "dogs-one", 0)
    finally:
        backend.router.release(lease, 200, None)

    # Then it is refused with SageMaker's throttling error, and served once the slot is free
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert _predict(runtime, "dogs-one", 0) == "Red_setter"


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (_serverless("open", memory=1536), "MemorySizeInMB 1536"),
        (_serverless("open", InstanceType="ml.m5.large", InitialInstanceCount=1), "both ServerlessConfig"),
        (_serverless("isolated"), "network isolation"),
        ({"VariantName": "AllTraffic", "ModelName": "open"}, "InstanceType and InitialInstanceCount"),
    ],
    ids=["memory-step", "instances-too", "network-isolation", "neither"],
)
def test_endpoint_configs_sagemaker_refuses_are_refused(
    env: dict[str, Any], variant: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as refused:
        env["backend"].create_endpoint_config(EndpointConfigName="refused", ProductionVariants=[variant])

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert message in refused.value.response["Error"]["Message"]


def test_an_instance_endpoint_cannot_be_updated_to_serverless(env: dict[str, Any]) -> None:
    backend = env["backend"]
    instances = {"VariantName": "AllTraffic", "ModelName": "open", "InstanceType": "ml.m5.large"}
    backend.create_endpoint_config(
        EndpointConfigName="instances-1", ProductionVariants=[{**instances, "InitialInstanceCount": 1}]
    )
    backend.create_endpoint_config(
        EndpointConfigName="serverless-2", ProductionVariants=[_serverless("open")]
    )
    backend.create_endpoint(EndpointName="dogs-instances", EndpointConfigName="instances-1")
    _in_service(backend, "dogs-instances")

    with pytest.raises(ClientError) as refused:
        backend.update_endpoint(EndpointName="dogs-instances", EndpointConfigName="serverless-2")

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert backend.describe_endpoint(EndpointName="dogs-instances")["EndpointConfigName"] == "instances-1"
