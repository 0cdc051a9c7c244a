"""The local cloud from a user's side: the printed exports, boto3 and the AWS CLI against them.

Given the session's local cloud (template.yaml deployed, the tiny model serving as the stack's endpoint,
tests/support/fixtures.py; deployed through SageMaker's own API), images dropped under incoming/ end as
results/ (and a Predictions item) or rejected/, the local HTTP API answers POST/GET /predictions, and
boto3 and the AWS CLI see the endpoint, its tags and SageMaker's errors at AWS_ENDPOINT_URL alone.
The loopback-URL hook (`dogbreed local up` without `--no-loopback-urls`) is exercised by the demo
(tests/e2e); this cloud keeps the product's URL policy.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prediction.item import from_item, item_key

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_jpeg
from tests.support.aws_cli import aws_cli
from tests.support.local_cloud import CloudWorld, aws_sagemaker, dogbreed_cli, local_cli
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
TAGS = [{"Key": "dogbreed:stack", "Value": "dogbreed-local"}, {"Key": "dogbreed:test", "Value": "inference"}]


@pytest.fixture(scope="module")
def exports(cloud_world: CloudWorld) -> dict[str, str]:
    """What `eval "$(dogbreed local env)"` puts in a shell, parsed from the real command's output."""
    output = subprocess.run(
        [sys.executable, "-m", "dogbreed", "local", "env", "--state-dir", str(cloud_world.state_dir)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    env = {}
    for line in output.splitlines():
        assert line.startswith("export ")
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return env


def client(exports: dict[str, str], service: str, **config: Any) -> Any:
    """A boto3 client configured only from the exports (as a user's shell would be), without retries."""
    session = boto3.session.Session(
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        region_name=exports["AWS_DEFAULT_REGION"],
    )
    no_retries = Config(retries={"max_attempts": 1}, **config)
    return session.client(service, endpoint_url=exports["AWS_ENDPOINT_URL"], config=no_retries)


def stored_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    def body() -> bytes | None:
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    document: dict[str, Any] = json.loads(wait_for(body, timeout=90, what=f"s3://{bucket}/{key}"))
    return document


def test_exports_point_boto3_at_the_stack(exports: dict[str, str]) -> None:
    buckets = {bucket["Name"] for bucket in client(exports, "s3").list_buckets()["Buckets"]}
    assert {exports["DOGBREED_DATA_BUCKET"], exports["DOGBREED_INFERENCE_BUCKET"]} <= buckets
    tables = client(exports, "dynamodb").list_tables()["TableNames"]
    assert exports["DOGBREED_PREDICTIONS_TABLE"] in tables


def test_an_image_uploaded_to_incoming_is_classified_into_s3_and_dynamodb(exports: dict[str, str]) -> None:
    s3, bucket = client(exports, "s3"), exports["DOGBREED_INFERENCE_BUCKET"]
    # When: an image lands under incoming/ (as `aws s3 cp dog.jpg s3://.../incoming/` would do).
    s3.put_object(
        Bucket=bucket, Key="incoming/test/blue.jpg", Body=solid_color_jpeg(2), ContentType="image/jpeg"
    )
    # Then: its result is in S3 and the same prediction is in the Predictions table.
    result = stored_json(s3, bucket, "results/test/blue.jpg.json")
    assert result["predictions"][0]["breed"] == TINY_CLASSES[2]
    item = from_item(
        client(exports, "dynamodb").get_item(
            TableName=exports["DOGBREED_PREDICTIONS_TABLE"], Key=item_key(result["prediction_id"])
        )["Item"]
    )
    assert item.record.model_dump(mode="json") == {key: result[key] for key in item.record.model_dump()}
    assert item.result_key == "results/test/blue.jpg.json"
    assert item.input_ref == f"s3://{bucket}/incoming/test/blue.jpg"


def test_a_bad_file_in_incoming_is_recorded_as_rejected(exports: dict[str, str]) -> None:
    s3, bucket = client(exports, "s3"), exports["DOGBREED_INFERENCE_BUCKET"]
    s3.put_object(Bucket=bucket, Key="incoming/test/notes.jpg", Body=b"not an image")
    rejection = stored_json(s3, bucket, "rejected/test/notes.jpg.json")
    assert rejection["source_key"] == "incoming/test/notes.jpg"
    assert rejection["reason"]["code"] == "not_an_image"


def test_the_local_http_api_classifies_binary_and_base64_bodies(exports: dict[str, str]) -> None:
    api = exports["DOGBREED_API_URL"]
    binary = httpx.post(
        f"{api}/predictions", content=solid_color_jpeg(0), headers={"Content-Type": "image/jpeg"}, timeout=60
    )
    assert binary.status_code == 201, binary.text
    assert binary.json()["predictions"][0]["breed"] == TINY_CLASSES[0]
    encoded = httpx.post(
        f"{api}/predictions?top_k=2",
        json={"image": base64.b64encode(solid_color_jpeg(1)).decode()},
        timeout=60,
    )
    assert encoded.status_code == 201, encoded.text
    body = encoded.json()
    assert [p["breed"] for p in body["predictions"]][:1] == [TINY_CLASSES[1]]
    assert len(body["predictions"]) == 2
    fetched = httpx.get(f"{api}/predictions/{body['prediction_id']}", timeout=30)
    assert fetched.status_code == 200
    assert fetched.json()["prediction_id"] == body["prediction_id"]


def test_an_unknown_route_gets_the_templates_gateway_response(exports: dict[str, str]) -> None:
    """template.yaml maps API Gateway's MISSING_AUTHENTICATION_TOKEN to 404 in the API's envelope."""
    response = httpx.get(f"{exports['DOGBREED_API_URL']}/nowhere", timeout=10)
    assert (response.status_code, response.json()) == (
        404,
        {"error": {"code": "route_not_found", "message": "No route matches this method and path."}},
    )


def test_a_body_that_is_not_an_image_is_415_in_the_apis_error_envelope(exports: dict[str, str]) -> None:
    response = httpx.post(
        f"{exports['DOGBREED_API_URL']}/predictions",
        content=b"garbage",
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "not_an_image"
    assert error["message"]


def test_up_is_idempotent_and_status_lists_the_stack(cloud_world: CloudWorld) -> None:
    from dogbreed.local.cloud.lifecycle import cloud_status

    again = local_cli("up", "--state-dir", str(cloud_world.state_dir), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stdout
    status = cloud_status(cloud_world.state)
    assert "TrainingPipeline" in status["resources"]
    [fleet] = status["sagemaker"]["fleets"]
    assert fleet["EndpointName"] == cloud_world.outputs["EndpointName"]


def test_status_shows_the_endpoint_as_sagemakers_api_describes_it(cloud_world: CloudWorld) -> None:
    shown = local_cli("status", "--state-dir", str(cloud_world.state_dir), timeout=60)
    assert shown.returncode == 0, shown.stderr
    endpoint = cloud_world.outputs["EndpointName"]
    # whichever config the shared cloud's endpoint runs now: tests before this one may have updated it
    # (and a rolled-back update leaves its FailureReason after the status)
    described = cloud_world.state.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    [variant] = described["ProductionVariants"]
    [line] = [line for line in shown.stdout.splitlines() if line.strip().startswith(f"{endpoint} ")]
    assert line.strip().startswith(f"{endpoint} InService")
    assert f"config {described['EndpointConfigName']} | " in line
    instances = f"{variant['CurrentInstanceCount']}/{variant['DesiredInstanceCount']} instance(s)"
    assert f"AllTraffic: {instances}" in line


def test_the_aws_cli_with_the_exports_uploads_to_incoming_and_reads_the_result(
    exports: dict[str, str], tmp_path: Path
) -> None:
    aws = aws_cli()
    env = {**os.environ, **exports}
    image = tmp_path / "dog.jpg"
    image.write_bytes(solid_color_jpeg(1))
    bucket = exports["DOGBREED_INFERENCE_BUCKET"]
    subprocess.run(
        [aws, "s3", "cp", str(image), f"s3://{bucket}/incoming/cli/dog.jpg"], env=env, check=True, timeout=60
    )

    def result() -> str | None:
        done = subprocess.run(
            [aws, "s3", "cp", f"s3://{bucket}/results/cli/dog.jpg.json", "-"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout if done.returncode == 0 else None

    body = json.loads(wait_for(result, timeout=90, what="the CLI to read the result", interval=1.0))
    assert body["predictions"][0]["breed"] == TINY_CLASSES[1]


# --- SageMaker's API at AWS_ENDPOINT_URL ----------------------------------------------------------


def test_boto3_lists_and_describes_the_endpoint_and_tags_its_resources(exports: dict[str, str]) -> None:
    sagemaker = client(exports, "sagemaker")
    name = exports["DOGBREED_ENDPOINT_NAME"]

    listed = sagemaker.list_endpoints(NameContains=name[2:8], StatusEquals="InService")["Endpoints"]
    described = sagemaker.describe_endpoint(EndpointName=name)

    assert [endpoint["EndpointName"] for endpoint in listed] == [name]
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert sagemaker.list_endpoints(StatusEquals="Failed")["Endpoints"] == []
    arns = [
        described["EndpointArn"],
        sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])[
            "EndpointConfigArn"
        ],
        sagemaker.describe_model(ModelName="dogbreed-tiny")["ModelArn"],
    ]
    for arn in arns:
        sagemaker.add_tags(ResourceArn=arn, Tags=TAGS)
    try:
        for arn in arns:
            assert TAGS[0] in sagemaker.list_tags(ResourceArn=arn)["Tags"]
            assert TAGS[1] in sagemaker.list_tags(ResourceArn=arn)["Tags"]
    finally:
        for arn in arns:
            sagemaker.delete_tags(ResourceArn=arn, TagKeys=[tag["Key"] for tag in TAGS])
    assert all(sagemaker.list_tags(ResourceArn=arn)["Tags"] == [] for arn in arns)


def test_sagemaker_errors_have_sagemakers_codes(exports: dict[str, str]) -> None:
    sagemaker = client(exports, "sagemaker")
    with pytest.raises(ClientError) as missing:
        sagemaker.describe_endpoint(EndpointName="no-such-endpoint")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not find endpoint" in missing.value.response["Error"]["Message"]
    with pytest.raises(sagemaker.exceptions.ResourceNotFound):
        sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="no-such-tuning-job")
    # A request botocore did not validate is refused by the server, in SageMaker's shape.
    unchecked = client(exports, "sagemaker", parameter_validation=False)
    with pytest.raises(ClientError) as invalid:
        unchecked.create_endpoint_config(EndpointConfigName="no-variants")
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    assert invalid.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invoke_endpoint_works_through_aws_endpoint_url_alone(exports: dict[str, str]) -> None:
    runtime = client(exports, "sagemaker-runtime")
    name = exports["DOGBREED_ENDPOINT_NAME"]

    answer = runtime.invoke_endpoint(EndpointName=name, ContentType="image/jpeg", Body=solid_color_jpeg(1))

    assert json.loads(answer["Body"].read())["predictions"][0]["breed"] == TINY_CLASSES[1]
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    with pytest.raises(runtime.exceptions.ValidationError):
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="image/jpeg", Body=b"x")
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(EndpointName=name, ContentType="image/jpeg", Body=b"not an image")


def test_the_aws_cli_lists_and_describes_the_endpoint(exports: dict[str, str]) -> None:
    env = {**os.environ, **exports}
    name = env["DOGBREED_ENDPOINT_NAME"]

    assert [e["EndpointName"] for e in aws_sagemaker(env, "list-endpoints")["Endpoints"]] == [name]
    assert aws_sagemaker(env, "describe-endpoint", "--endpoint-name", name)["EndpointStatus"] == "InService"
    with pytest.raises(subprocess.CalledProcessError) as missing:
        aws_sagemaker(env, "describe-endpoint", "--endpoint-name", "no-such-endpoint")
    assert "(ValidationException)" in missing.value.stderr


def test_a_written_profile_reaches_the_cloud_and_the_shell_points_nowhere(
    cloud_world: CloudWorld, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile work]\nregion = eu-central-1\n")
    # a shell with no AWS settings of its own but this config file
    shell = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    shell |= {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    state_dir = str(cloud_world.state_dir)
    written = dogbreed_cli("local", "env", "--state-dir", state_dir, "--profile", "dogbreed-local", env=shell)
    assert written.returncode == 0, written.stderr
    assert "AWS_" not in written.stdout  # a later sam deploy in this shell goes to AWS, not here
    assert "export DOGBREED_ENDPOINT_NAME=" in written.stdout
    assert "[profile work]" in config.read_text()
    name = cloud_world.outputs["EndpointName"]

    listed = aws_sagemaker(shell, "list-endpoints", "--profile", "dogbreed-local")
    image = tmp_path / "dog.jpg"
    image.write_bytes(solid_color_jpeg(1))
    profiled = {**shell, "AWS_PROFILE": "dogbreed-local"}
    predicted = dogbreed_cli("predict", str(image), "--endpoint", name, "--json", env=profiled)
    # --endpoint-url is the AWS CLI's override: it wins over the profile's (nothing listens on port 9)
    elsewhere = dogbreed_cli(
        "predict", str(image), "--endpoint", name, "--endpoint-url", "http://127.0.0.1:9", env=profiled
    )

    assert [endpoint["EndpointName"] for endpoint in listed["Endpoints"]] == [name]
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["predictions"][0]["breed"] == TINY_CLASSES[1]
    assert elsewhere.returncode == 1 and "127.0.0.1:9" in elsewhere.stderr
    assert "Traceback" not in elsewhere.stderr
