"""The local cloud from a user's side: `dogbreed local up`, the printed exports, boto3 against them.

Given a local cloud deployed from template.yaml and a tiny model deployed on its local SageMaker
backend as the template's endpoint, images dropped under incoming/ end as results/ (and a
Predictions item) or rejected/, and the local HTTP API answers POST/GET /predictions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dogbreed.commands.local import cloud_status, sagemaker_call
from dogbreed.local.cloud.state import CloudState

from .local_cloud_support import local_cloud, pack_model, session_from_exports, wait_for

pytestmark = pytest.mark.slow
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312"


def _jpeg(class_index: int, seed: int = 0) -> bytes:
    """The tiny model's learnable signal: the dominant colour channel is the class."""
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, size=(48, 48, 3))
    image[..., class_index] += 150
    buffer = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _exports(state_dir: Path) -> dict[str, str]:
    """What `eval "$(dogbreed local env)"` puts in a shell, parsed from the real command's output."""
    output = subprocess.run(
        [sys.executable, "-m", "dogbreed", "local", "env", "--state-dir", str(state_dir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = {}
    for line in output.splitlines():
        assert line.startswith("export ")
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return env


@pytest.fixture(scope="module")
def cloud(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("local-cloud")
    with local_cloud(state_dir) as state:
        env = _exports(state_dir)
        session, _ = session_from_exports(env)
        s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
        # Given: a tiny model deployed as the stack's endpoint through the local SageMaker backend.
        s3.put_object(
            Bucket=env["DOGBREED_DATA_BUCKET"],
            Key="models/tiny/model.tar.gz",
            Body=pack_model(tiny_model_dir),
        )
        sagemaker_call(
            state,
            "create_model",
            ModelName="dogbreed-tiny",
            PrimaryContainer={
                "Image": IMAGE,
                "ModelDataUrl": f"s3://{env['DOGBREED_DATA_BUCKET']}/models/tiny/model.tar.gz",
            },
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        )
        sagemaker_call(
            state,
            "create_endpoint_config",
            EndpointConfigName="dogbreed-tiny",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "dogbreed-tiny",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker_call(
            state,
            "create_endpoint",
            EndpointName=env["DOGBREED_ENDPOINT_NAME"],
            EndpointConfigName="dogbreed-tiny",
        )
        wait_for(
            lambda: (
                sagemaker_call(state, "describe_endpoint", EndpointName=env["DOGBREED_ENDPOINT_NAME"])[
                    "EndpointStatus"
                ]
                == "InService"
            ),
            timeout=180,
            what="the endpoint to be InService",
        )
        yield {"state": state, "state_dir": state_dir, "env": env, "session": session}


def _result(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    body = wait_for(
        lambda: _get(s3, bucket, key),
        timeout=90,
        what=f"s3://{bucket}/{key}",
    )
    result: dict[str, Any] = json.loads(body)
    return result


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return body


def test_exports_point_boto3_at_the_stack(cloud: dict[str, Any]) -> None:
    env = cloud["env"]
    s3 = cloud["session"].client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert {env["DOGBREED_DATA_BUCKET"], env["DOGBREED_INFERENCE_BUCKET"]} <= buckets
    dynamodb = cloud["session"].client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
    assert env["DOGBREED_PREDICTIONS_TABLE"] in dynamodb.list_tables()["TableNames"]


def test_an_image_uploaded_to_incoming_is_classified_into_s3_and_dynamodb(cloud: dict[str, Any]) -> None:
    env = cloud["env"]
    s3 = cloud["session"].client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    bucket = env["DOGBREED_INFERENCE_BUCKET"]
    # When: an image lands under incoming/ (as `aws s3 cp dog.jpg s3://.../incoming/` would do).
    s3.put_object(Bucket=bucket, Key="incoming/test/blue.jpg", Body=_jpeg(2), ContentType="image/jpeg")
    # Then: its result is in S3 and in the Predictions table.
    result = _result(s3, bucket, "results/test/blue.jpg.json")
    assert result["predictions"][0]["breed"] == "Blue_heeler"
    dynamodb = cloud["session"].client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
    item = dynamodb.get_item(
        TableName=env["DOGBREED_PREDICTIONS_TABLE"], Key={"prediction_id": {"S": result["prediction_id"]}}
    )
    assert "Item" in item


def test_a_bad_file_in_incoming_is_recorded_as_rejected(cloud: dict[str, Any]) -> None:
    env = cloud["env"]
    s3 = cloud["session"].client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    bucket = env["DOGBREED_INFERENCE_BUCKET"]
    s3.put_object(Bucket=bucket, Key="incoming/test/notes.jpg", Body=b"not an image")
    rejection = _result(s3, bucket, "rejected/test/notes.jpg.json")
    assert rejection["source_key"] == "incoming/test/notes.jpg"
    assert rejection["reason"]["code"]


def test_the_local_http_api_classifies_binary_and_base64_bodies(cloud: dict[str, Any]) -> None:
    import base64

    api = cloud["env"]["DOGBREED_API_URL"]
    binary = httpx.post(
        f"{api}/predictions", content=_jpeg(0), headers={"Content-Type": "image/jpeg"}, timeout=60
    )
    assert binary.status_code == 201, binary.text
    assert binary.json()["predictions"][0]["breed"] == "Red_setter"
    encoded = httpx.post(
        f"{api}/predictions?top_k=2", json={"image": base64.b64encode(_jpeg(1)).decode()}, timeout=60
    )
    assert encoded.status_code == 201, encoded.text
    body = encoded.json()
    assert len(body["predictions"]) == 2
    fetched = httpx.get(f"{api}/predictions/{body['prediction_id']}", timeout=30)
    assert fetched.status_code == 200
    assert fetched.json()["prediction_id"] == body["prediction_id"]


def test_the_local_http_api_answers_like_api_gateway_for_unknown_routes_and_bad_input(
    cloud: dict[str, Any],
) -> None:
    api = cloud["env"]["DOGBREED_API_URL"]
    assert httpx.get(f"{api}/nowhere", timeout=10).status_code == 403
    bad = httpx.post(
        f"{api}/predictions", content=b"garbage", headers={"Content-Type": "image/jpeg"}, timeout=30
    )
    assert 400 <= bad.status_code < 500
    assert "error" in bad.json()


def test_up_is_idempotent_and_status_lists_the_stack(cloud: dict[str, Any]) -> None:
    again = subprocess.run(
        [sys.executable, "-m", "dogbreed", "local", "up", "--state-dir", str(cloud["state_dir"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0
    assert "already up" in again.stdout
    state: CloudState = cloud["state"]
    status = cloud_status(state)
    assert "TrainingPipeline" in status["resources"]
    assert any(endpoint for endpoint in status["sagemaker"]["endpoints"])


def test_the_local_cloud_lets_url_inputs_reach_a_loopback_server(cloud: dict[str, Any]) -> None:
    """Only through the local cloud's LOCAL_CLOUD_ALLOW_LOOPBACK_URLS function environment override."""
    from dogbreed.local.cloud.demo import loopback_image_server

    api = cloud["env"]["DOGBREED_API_URL"]
    with loopback_image_server(_jpeg(2)) as url:
        response = httpx.post(f"{api}/predictions", json={"url": url}, timeout=60)
    assert response.status_code == 201, response.text
    assert response.json()["predictions"][0]["breed"] == "Blue_heeler"


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_the_aws_cli_with_the_exports_uploads_to_incoming_and_reads_the_result(
    cloud: dict[str, Any], tmp_path: Path
) -> None:
    env = {**os.environ, **cloud["env"]}
    image = tmp_path / "dog.jpg"
    image.write_bytes(_jpeg(1))
    bucket = env["DOGBREED_INFERENCE_BUCKET"]
    subprocess.run(
        ["aws", "s3", "cp", str(image), f"s3://{bucket}/incoming/cli/dog.jpg"], env=env, check=True
    )

    def result() -> str | None:
        done = subprocess.run(
            ["aws", "s3", "cp", f"s3://{bucket}/results/cli/dog.jpg.json", "-"],
            env=env,
            capture_output=True,
            text=True,
        )
        return done.stdout if done.returncode == 0 else None

    body = json.loads(wait_for(result, timeout=90, what="the CLI to read the result", interval=1.0))
    assert body["predictions"][0]["breed"] == "Green_hound"
