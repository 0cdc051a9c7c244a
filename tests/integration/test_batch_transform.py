"""Batch inference on the local cloud: `batches/<id>/manifest.json` written to the inference bucket runs
statemachine/batch_transform.asl.json (EventBridge -> Step Functions -> PrepareBatch -> the deployed
model resolved from the endpoint -> createTransformJob.sync on the local SageMaker -> SummarizeBatch).

Given the session's local cloud (the tiny model serving as the stack's endpoint), every input ends as
exactly one result or one rejection, counted by this test's own S3 reads; manifests that cannot run
fail before any transform job starts; a transform job that fails is reported with its reason.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from typing import Any

import pytest

from dogbreed.aws import stepfunctions as sfn_rules
from dogbreed.batch import batch_status, find_execution, submit
from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_jpeg
from dogbreed.cli import main
from dogbreed.local.cloud.model_deploy import EXECUTION_ROLE, serving_image
from tests.support.local_cloud import CloudWorld
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def _run(world: CloudWorld, document: dict[str, Any], timeout: float = 180) -> tuple[str, dict[str, Any]]:
    """Submit a batch as a user would and wait for its execution to end; (batch id, execution)."""
    outputs = world.outputs
    batch_id = f"test-{uuid.uuid4().hex[:8]}"
    submit(world.client("s3"), outputs["InferenceBucketName"], batch_id, document)
    sfn = world.client("stepfunctions")

    def ended() -> dict[str, Any] | None:
        execution = find_execution(sfn, outputs["BatchTransformPipelineArn"], batch_id)
        return execution if execution and execution["status"] != "RUNNING" else None

    execution: dict[str, Any] = wait_for(ended, timeout=timeout, what=f"batch {batch_id} to end")
    return batch_id, execution


def _request_problems(world: CloudWorld, execution_arn: str) -> list[str]:
    """Every Task request the execution sent, checked against botocore's input shape of its API."""
    events = world.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)
    problems = []
    for event in events["events"]:
        details = event.get("taskScheduledEventDetails")
        if details:
            resource = f"arn:aws:states:::{details['resourceType']}:{details['resource']}"
            problem = sfn_rules.task_request_problems(resource, json.loads(details["parameters"]))
            problems += [f"{resource}: {problem}"] if problem else []
    return problems


def _keys(world: CloudWorld, prefix: str) -> list[str]:
    s3 = world.client("s3")
    listed = s3.list_objects_v2(Bucket=world.outputs["InferenceBucketName"], Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def _read(world: CloudWorld, key: str) -> bytes:
    s3 = world.client("s3")
    body: bytes = s3.get_object(Bucket=world.outputs["InferenceBucketName"], Key=key)["Body"].read()
    return body


def _transform_jobs(world: CloudWorld) -> list[str]:
    listed = world.client("sagemaker").list_transform_jobs(NameContains="batch-", MaxResults=100)
    return [summary["TransformJobName"] for summary in listed["TransformJobSummaries"]]


def _serving_model(world: CloudWorld) -> str:
    """The model the stack's endpoint serves now, as SageMaker describes it (tests before this module
    may have deployed another one to the shared cloud)."""
    sagemaker = world.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=world.outputs["EndpointName"])["EndpointConfigName"]
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    return str(variants[0]["ModelName"])


@pytest.fixture(scope="module")
def photos(cloud_world: CloudWorld) -> dict[str, str]:
    """Three good images, a file that is not an image, under one prefix: key -> expected breed or ''."""
    bucket = cloud_world.outputs["InferenceBucketName"]
    prefix = f"photos/{uuid.uuid4().hex[:8]}/"
    s3 = cloud_world.client("s3")
    expected = {}
    for index, breed in enumerate(TINY_CLASSES):
        key = f"{prefix}{breed}.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=solid_color_jpeg(index, seed=7))
        expected[key] = breed
    s3.put_object(Bucket=bucket, Key=f"{prefix}notes.jpg", Body=b"this is not an image")
    expected[f"{prefix}notes.jpg"] = ""
    return expected


def test_good_and_bad_images_give_exactly_one_result_or_rejection_per_input(
    cloud_world: CloudWorld, photos: dict[str, str]
) -> None:
    # Given a manifest naming three good images, one bad file and one key that does not exist
    bucket = cloud_world.outputs["InferenceBucketName"]
    missing = next(iter(photos)).rsplit("/", 1)[0] + "/gone.jpg"
    keys = [*photos, f"s3://{bucket}/{missing}"]

    # When the batch runs with the deployed model
    batch_id, execution = _run(cloud_world, {"keys": keys, "top_k": 2})

    # Then it succeeds, and S3 holds exactly one result or one rejection per input
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    results = _keys(cloud_world, f"batches/{batch_id}/results/")
    rejected = _keys(cloud_world, f"batches/{batch_id}/rejected/")
    good = [key for key, breed in photos.items() if breed]
    assert sorted(results) == sorted(f"batches/{batch_id}/results/{key}.out" for key in good)
    assert sorted(rejected) == sorted(
        f"batches/{batch_id}/rejected/{key}.json" for key in [missing, *(k for k in photos if k not in good)]
    )
    for key in good:
        (line,) = _read(cloud_world, f"batches/{batch_id}/results/{key}.out").decode().splitlines()
        predictions = json.loads(line)["predictions"]
        assert len(predictions) == 2 and predictions[0]["breed"] == photos[key]
    reasons = {
        json.loads(_read(cloud_world, key))["input"]: json.loads(_read(cloud_world, key))["code"]
        for key in rejected
    }
    assert reasons[f"s3://{bucket}/{missing}"] == "not_found"
    assert reasons[f"s3://{bucket}/{next(k for k in photos if k not in good)}"] == "not_an_image"

    # And the summary counts breeds and names the rejections, the model version and the job
    summary = json.loads(_read(cloud_world, f"batches/{batch_id}/summary.json"))
    assert summary["status"] == "completed"
    assert (summary["inputs"], summary["results"], summary["rejected"]) == (5, 3, 2)
    assert summary["breeds"] == dict.fromkeys(TINY_CLASSES, 1)
    assert summary["model_version"] == _serving_model(cloud_world)
    assert summary["transform_job"]["instance_count"] == 1 and summary["duration_seconds"] > 0
    assert json.loads(execution["output"])["results"] == 3

    # And every request the batch's tasks sent (the transform job's included) is one AWS accepts
    assert _request_problems(cloud_world, execution["executionArn"]) == []


def test_a_prefix_batch_classifies_every_object_under_it_and_status_reads_it_back(
    cloud_world: CloudWorld, photos: dict[str, str]
) -> None:
    prefix = next(iter(photos)).rsplit("/", 1)[0] + "/"

    batch_id, execution = _run(cloud_world, {"prefix": prefix})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    outputs = _keys(cloud_world, f"batches/{batch_id}/results/") + _keys(
        cloud_world, f"batches/{batch_id}/rejected/"
    )
    assert len(outputs) == len(photos)
    status = batch_status(cloud_world.client, cloud_world.outputs, batch_id)
    assert (status.execution, status.transform_status, status.sent) == ("SUCCEEDED", "Completed", len(photos))
    assert (status.results, status.rejected) == (3, 1)
    assert status.summary is not None and status.summary["results"] == 3


@pytest.mark.parametrize(
    ("document", "error", "says"),
    [
        ({"keys": []}, "ManifestInvalid", "empty_manifest"),
        ({"prefix": "nothing-here/"}, "ManifestInvalid", "empty_manifest"),
        ({"keys": ["s3://someone-elses-bucket/dog.jpg"]}, "ManifestInvalid", "outside_bucket"),
        (
            {"keys": ["incoming/a.jpg"], "model": "dogbreed-no-such-model"},
            "ModelNotFound",
            "dogbreed-no-such-model",
        ),
    ],
)
def test_a_manifest_that_cannot_run_fails_clearly_before_any_job_starts(
    cloud_world: CloudWorld, document: dict[str, Any], error: str, says: str
) -> None:
    jobs_before = _transform_jobs(cloud_world)

    _batch_id, execution = _run(cloud_world, document)

    assert (execution["status"], execution["error"]) == ("FAILED", error)
    assert says in execution["cause"]
    assert _transform_jobs(cloud_world) == jobs_before


def test_a_transform_job_that_fails_is_reported_with_its_reason(
    cloud_world: CloudWorld, photos: dict[str, str]
) -> None:
    # Given a model version whose archive has no model in it (its model server cannot start)
    outputs = cloud_world.outputs
    name = f"dogbreed-broken-{uuid.uuid4().hex[:6]}"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b'["a"]'
        info = tarfile.TarInfo("classes.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    key = f"models/direct/{name}/model.tar.gz"
    cloud_world.client("s3").put_object(Bucket=outputs["DataBucketName"], Key=key, Body=archive.getvalue())
    cloud_world.client("sagemaker").create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": serving_image(),
            "ModelDataUrl": f"s3://{outputs['DataBucketName']}/{key}",
        },
        ExecutionRoleArn=EXECUTION_ROLE,
    )

    # When a batch names it
    batch_id, execution = _run(cloud_world, {"keys": list(photos), "model": name})

    # Then the execution fails with the job's own reason, and the summary records it
    assert (execution["status"], execution["error"]) == ("FAILED", "TransformFailed")
    assert "ping health check" in execution["cause"]
    assert _request_problems(cloud_world, execution["executionArn"]) == []
    summary = json.loads(_read(cloud_world, f"batches/{batch_id}/summary.json"))
    assert summary["status"] == "failed" and "ping health check" in summary["failure"]["cause"]
    assert summary["results"] == 0 and summary["unprocessed"] == len(photos)


def test_the_cli_submits_a_prefix_follows_it_and_reads_its_status(
    cloud_world: CloudWorld, photos: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = next(iter(photos)).rsplit("/", 1)[0] + "/"
    local = ["--local", "--state-dir", str(cloud_world.state_dir)]
    batch_id = f"cli-{uuid.uuid4().hex[:8]}"

    submitted = main(["batch", "submit", prefix, "--id", batch_id, "--top-k", "1", "--wait", *local])
    followed = capsys.readouterr().out
    status = main(["batch", "status", batch_id, *local])
    shown = capsys.readouterr().out

    assert submitted == 0 and status == 0
    assert f"batch {batch_id} submitted" in followed and "3 results, 1 rejected of 4 inputs" in followed
    assert f"batch {batch_id}: SUCCEEDED" in shown and "rejected s3://" in shown and "not_an_image" in shown
    assert len(_keys(cloud_world, f"batches/{batch_id}/results/")) == 3


def test_a_batch_whose_every_input_is_rejected_up_front_starts_no_job_and_still_summarizes(
    cloud_world: CloudWorld,
) -> None:
    jobs_before = _transform_jobs(cloud_world)

    batch_id, execution = _run(cloud_world, {"keys": ["photos/none-1.jpg", "photos/none-2.jpg"]})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert _transform_jobs(cloud_world) == jobs_before
    assert len(_keys(cloud_world, f"batches/{batch_id}/rejected/")) == 2
    summary = json.loads(_read(cloud_world, f"batches/{batch_id}/summary.json"))
    assert (summary["inputs"], summary["results"], summary["rejected"]) == (2, 0, 2)
    assert summary["transform_job"] is None
