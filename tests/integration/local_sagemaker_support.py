"""Shared pieces of the local SageMaker tests: a real moto server on loopback, boto3 clients for it,
request builders and the process-leak check."""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from dogbreed.loopback import pid_alive
from tests.support.credentials import FAKE_CREDENTIALS
from tests.support.waiting import wait_for

logging.getLogger("werkzeug").setLevel(logging.WARNING)

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "dogbreed-data"


@contextmanager
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client_factory(url: str) -> Callable[[str], Any]:
    cache: dict[str, Any] = {}
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=60)

    def factory(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(
                service,
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                config=config,
            )
        return cache[service]

    return factory


def upload_tree(s3: Any, root: Path, bucket: str, prefix: str) -> str:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
    return f"s3://{bucket}/{prefix}"


def upload_model(s3: Any, model_dir: Path, key: str, bucket: str = BUCKET) -> str:
    """A model directory as the training job's model.tar.gz (its files at the archive's root)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def runtime_client(url: str, read_timeout: int = 60) -> Any:
    """A sagemaker-runtime client on the local SageMaker's runtime, without retries (a test sees
    every answer as the endpoint gave it)."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=read_timeout),
    )


def upload_sourcedir(s3: Any, source: Path, bucket: str, key: str) -> str:
    """Pack a directory as sourcedir.tar.gz, as the SageMaker SDK does."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(source.rglob("*")):
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def upload_training_code(s3: Any, bucket: str, key: str) -> str:
    """The real training code package (training_job/ plus the shared packages), as the deploy builds it."""
    from dogbreed.packaging import source_tarball

    s3.put_object(Bucket=bucket, Key=key, Body=source_tarball().data)
    return f"s3://{bucket}/{key}"


def training_request(
    name: str,
    *,
    sourcedir: str,
    channel_uri: str,
    hyperparameters: dict[str, str] | None = None,
    metric_definitions: list[dict[str, str]] | None = None,
    instance_count: int = 1,
    max_runtime: int = 600,
    program: str = "train.py",
    checkpoint_uri: str | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions or [],
        },
        "RoleArn": ROLE,
        "HyperParameters": {
            **(hyperparameters or {}),
            "sagemaker_program": f'"{program}"',
            "sagemaker_submit_directory": f'"{sourcedir}"',
        },
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": channel_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": instance_count,
            "VolumeSizeInGB": 5,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if checkpoint_uri:
        request["CheckpointConfig"] = {"S3Uri": checkpoint_uri}
    return request


def assert_no_process_left(pids: list[int]) -> None:
    leftover = wait_for(
        lambda: not [pid for pid in pids if pid_alive(pid)] or None,
        timeout=15,
        what="child processes to exit",
    )
    assert leftover is True
