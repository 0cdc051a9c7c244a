"""Local SageMaker Batch Transform jobs: the real `dogbreed serve` model servers over model.tar.gz from
S3 (moto server), inputs from a ManifestFile or an S3 prefix, one `.out` per input, SageMaker's
failure rules (a failed input fails the job, the other inputs still get their output), a model that
does not start, StopTransformJob, and the API's shapes and errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_jpeg
from dogbreed.local.sagemaker import LocalSageMaker
from dogbreed.local.sagemaker._aws import validate_request
from tests.integration.local_sagemaker_support import BUCKET, ROLE, client_factory, moto_server, upload_model
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"
GOOD = {f"photos/{breed}.jpg": solid_color_jpeg(index) for index, breed in enumerate(TINY_CLASSES)}
BAD = {"photos/notes.jpg": b"this is not an image"}


@pytest.fixture(scope="module")
def env(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("local-sm-transform")
    with moto_server() as url:
        clients = client_factory(url)
        s3 = clients("s3")
        s3.create_bucket(Bucket=BUCKET)
        for key, body in {**GOOD, **BAD}.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        broken = root / "broken"
        broken.mkdir()
        (broken / "classes.json").write_text('["a"]')
        backend = LocalSageMaker(root / "state", clients=clients)
        for name, uri in {
            "model-tiny": upload_model(s3, tiny_model_dir, "models/tiny/model.tar.gz"),
            "model-broken": upload_model(s3, broken, "models/broken/model.tar.gz"),
        }.items():
            backend.create_model(
                ModelName=name, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": uri}, ExecutionRoleArn=ROLE
            )
        try:
            yield {"backend": backend, "s3": s3}
        finally:
            pids = backend.processes.all_pids()
            backend.shutdown()
            assert pids
            assert backend.processes.alive_pids() == []


def _request(name: str, model: str, source: dict[str, str], output: str, accept: str) -> dict[str, Any]:
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "SingleRecord",
        "MaxConcurrentTransforms": 2,
        "MaxPayloadInMB": 6,
        "Environment": {"DOGBREED_TOP_K": "2"},
        "TransformInput": {
            "DataSource": {"S3DataSource": source},
            "ContentType": "application/x-image",
            "SplitType": "None",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{BUCKET}/{output}",
            "Accept": accept,
            "AssembleWith": "None",
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    validate_request("CreateTransformJob", request)  # the request boto3 would send
    return request


def _finished(backend: LocalSageMaker, name: str, timeout: float = 120) -> dict[str, Any]:
    def described() -> dict[str, Any] | None:
        job = backend.describe_transform_job(TransformJobName=name)
        return job if job["TransformJobStatus"] in ("Completed", "Failed", "Stopped") else None

    result: dict[str, Any] = wait_for(described, timeout=timeout, what=f"transform job {name} to end")
    return result


def _outputs(s3: Any, prefix: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {
        item["Key"][len(prefix) :]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        for item in listed
    }


def test_a_manifest_of_good_and_bad_images_gives_one_json_line_per_input(env: dict[str, Any]) -> None:
    # Given a manifest naming three good images and one file that is not an image
    backend, s3 = env["backend"], env["s3"]
    manifest = [{"prefix": f"s3://{BUCKET}/"}, *GOOD, *BAD]
    s3.put_object(Bucket=BUCKET, Key="batches/a/input.manifest", Body=json.dumps(manifest).encode())
    source = {"S3DataType": "ManifestFile", "S3Uri": f"s3://{BUCKET}/batches/a/input.manifest"}

    # When a transform job asks for JSON Lines
    backend.create_transform_job(**_request("job-a", "model-tiny", source, "out/a/", "application/jsonlines"))
    job = _finished(backend, "job-a")

    # Then it completes, and each input has exactly one .out: a prediction line or a rejection line
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    outputs = _outputs(s3, "out/a/")
    assert set(outputs) == {f"{key}.out" for key in [*GOOD, *BAD]}
    for key in GOOD:
        (line,) = outputs[f"{key}.out"].decode().splitlines()
        document = json.loads(line)
        assert document["predictions"][0]["breed"] == Path(key).stem
        assert len(document["predictions"]) == 2  # DOGBREED_TOP_K from the job's Environment
    (line,) = outputs["photos/notes.jpg.out"].decode().splitlines()
    assert json.loads(line)["rejected"]["code"]
    assert job["TransformStartTime"] <= job["TransformEndTime"]


def test_with_plain_json_a_bad_input_fails_the_job_and_the_others_still_get_their_output(
    env: dict[str, Any],
) -> None:
    # Given a prefix holding good images and one bad file, and a job that asks for plain JSON
    backend, s3 = env["backend"], env["s3"]
    source = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/photos/"}

    backend.create_transform_job(**_request("job-b", "model-tiny", source, "out/b", "application/json"))
    job = _finished(backend, "job-b")

    # Then the bad input's 4xx fails the job with a reason naming it, as SageMaker does
    assert job["TransformJobStatus"] == "Failed"
    assert "notes.jpg" in job["FailureReason"]
    assert set(_outputs(s3, "out/b/")) == {f"{Path(key).name}.out" for key in GOOD}


def test_a_model_whose_server_does_not_start_fails_the_job_with_the_reason(env: dict[str, Any]) -> None:
    backend = env["backend"]
    source = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/photos/"}

    backend.create_transform_job(
        **_request("job-c", "model-broken", source, "out/c", "application/jsonlines")
    )
    job = _finished(backend, "job-c")

    assert job["TransformJobStatus"] == "Failed"
    assert "ping health check" in job["FailureReason"]
    assert _outputs(env["s3"], "out/c/") == {}


def test_stop_ends_a_running_job_stopped(env: dict[str, Any]) -> None:
    backend = env["backend"]
    source = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/photos/"}
    backend.create_transform_job(**_request("job-d", "model-tiny", source, "out/d", "application/jsonlines"))

    backend.stop_transform_job(TransformJobName="job-d")
    job = _finished(backend, "job-d")

    assert job["TransformJobStatus"] == "Stopped"


def test_the_api_lists_jobs_and_names_sagemakers_errors(env: dict[str, Any]) -> None:
    backend = env["backend"]
    source = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/photos/"}
    deadline = time.monotonic() + 120
    while backend.list_transform_jobs(StatusEquals="InProgress")["TransformJobSummaries"]:
        assert time.monotonic() < deadline

    listed = backend.list_transform_jobs(NameContains="job-", SortBy="Name", SortOrder="Ascending")
    names = [summary["TransformJobName"] for summary in listed["TransformJobSummaries"]]
    assert names == sorted(names) and {"job-a", "job-b", "job-c"} <= set(names)
    with pytest.raises(ClientError) as missing_model:
        backend.create_transform_job(
            **_request("job-e", "no-such-model", source, "out/e", "application/jsonlines")
        )
    assert missing_model.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as duplicate:
        backend.create_transform_job(
            **_request("job-a", "model-tiny", source, "out/e", "application/jsonlines")
        )
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as unknown:
        backend.describe_transform_job(TransformJobName="job-zzz")
    assert unknown.value.response["Error"]["Code"] == "ValidationException"
