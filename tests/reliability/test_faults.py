"""Faults injected into the shared local cloud, each with an asserted outcome and a reconciliation of
the stores: every API 201 and every dropped image has exactly one result object and one Predictions
item, and a failed request or a dead-lettered drop leaves neither (zero lost, zero duplicated).

Every test clears its faults in a finalizer and leaves the endpoint InService.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config
from prediction.dependencies import AWS_CONFIG

from dogbreed.bench.tiny_model import solid_color_jpeg
from dogbreed.local.cloud.fault_client import FaultClient
from dogbreed.local.cloud.model_deploy import deploy_model_dir, wait_in_service
from dogbreed.local.cloud.stack import load_stack
from dogbreed.local.lambda_runtime.invocation_record import event_from_dead_letter
from tests.support.local_cloud import CloudWorld
from tests.support.pipeline_runs import execution_for, run_records, upload_training_run
from tests.support.predictions import candidate_model, post_image, served_model_version
from tests.support.scale import scaled
from tests.support.stores import (
    DropReconciliation,
    api_snapshot,
    assert_api_reconciles,
    prediction_items,
    reconcile_drops,
    result_key,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

API_RESULTS_PREFIX = "results/api/"
# The functions' DynamoDB client's attempts per call (prediction.dependencies.AWS_CONFIG): a fault with
# this budget fails exactly one invocation's write.
FUNCTION_DYNAMODB_ATTEMPTS = int(AWS_CONFIG.retries["total_max_attempts"])
# An S3 drop is invoked up to 3 times (EventInvokeConfig) x 3 endpoint attempts each: an endpoint
# fault with a budget below this can delay drops but never dead-letter one.
DROP_ENDPOINT_ATTEMPTS = 9
DROP_TIMEOUT_SECONDS = 180.0


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def faults(cloud_world: CloudWorld) -> Iterator[FaultClient]:
    client = FaultClient(cloud_world.state)
    client.clear()
    yield client
    client.clear()
    wait_in_service(cloud_world.state, timeout=180)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """This test's own key space under incoming/ and results/."""
    return f"faults/{request.node.name[:40].replace('[', '-').rstrip(']')}-{uuid.uuid4().hex[:8]}"


def assert_retry_later(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == code
    assert int(response.headers["Retry-After"]) > 0


def drop_images(world: CloudWorld, prefix: str, count: int) -> list[str]:
    s3 = world.client("s3")
    keys = [f"incoming/{prefix}/dog-{index}.jpg" for index in range(count)]
    for index, key in enumerate(keys):
        s3.put_object(
            Bucket=world.outputs["InferenceBucketName"], Key=key, Body=solid_color_jpeg(index % 3, seed=index)
        )
    return keys


def wait_for_records(world: CloudWorld, prefix: str, keys: list[str]) -> DropReconciliation:
    def settled() -> DropReconciliation | None:
        state = reconcile_drops(world, prefix, keys)
        return state if all(state.results[key] and state.items[key] for key in keys) else None

    return wait_for(settled, timeout=DROP_TIMEOUT_SECONDS, what=f"a record for each of {len(keys)} drops")


def dead_letters(world: CloudWorld, keys: list[str], *, timeout: float) -> dict[str, list[dict[str, Any]]]:
    """Dead-lettered events of `keys` (key -> events), removed from the function's DLQ; other
    messages are left there."""
    sqs = world.client("sqs")
    url = world.outputs["PredictS3DeadLetterQueueUrl"]
    wanted = set(keys)
    found: dict[str, list[dict[str, Any]]] = {}
    others: list[str] = []
    deadline = time.monotonic() + timeout
    while set(found) != wanted and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
        )
        for message in response.get("Messages", []):
            # EventBridge parks the bare event, the function's OnFailure destination an invocation
            # record with the event under requestPayload: the redrive sends the event either way.
            event = event_from_dead_letter(json.loads(message["Body"]))
            key = event.get("detail", {}).get("object", {}).get("key", "")
            if key in wanted:
                found.setdefault(key, []).append(event)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                others.append(message["ReceiptHandle"])
    for handle in others:  # not this test's: visible again for whoever owns them
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return found


def delivery_queue_url(world: CloudWorld) -> str:
    """The SQS queue the inference bucket's EventBridge rule targets (the local cloud delivers from it
    to the function, with the function's retries and dead-letter queue)."""
    events, sqs = world.client("events"), world.client("sqs")
    bucket = world.outputs["InferenceBucketName"]
    for rule in events.list_rules()["Rules"]:
        if bucket not in rule.get("EventPattern", ""):
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if target["Arn"].startswith("arn:aws:sqs:"):
                return str(sqs.get_queue_url(QueueName=target["Arn"].rsplit(":", 1)[-1])["QueueUrl"])
    raise AssertionError(f"no rule delivers events of {bucket}")


def resend_event(world: CloudWorld, event: dict[str, Any]) -> None:
    """Deliver an S3 event again on the rule's delivery path, as EventBridge would."""
    world.client("sqs").send_message(QueueUrl=delivery_queue_url(world), MessageBody=json.dumps(event))


def object_created_event(world: CloudWorld, key: str) -> dict[str, Any]:
    """The "Object Created" event S3 sent for `key` (the shape moto's S3 notifications give)."""
    bucket = world.outputs["InferenceBucketName"]
    head = world.client("s3").head_object(Bucket=bucket, Key=key)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "account": "123456789012",
        "time": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": head["ContentLength"],
                "eTag": head["ETag"].strip('"'),
                # moto names an unversioned object's version "null", as S3's own APIs do
                "version-id": head.get("VersionId", "null"),
                "sequencer": "617f08299329d189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def records_created(world: CloudWorld, prefix: str) -> dict[str, datetime]:
    """Result key -> creation time of the Predictions items under `prefix`."""
    return {
        item.result_key: item.record.created_at
        for item in prediction_items(world)
        if item.result_key.startswith(f"results/{prefix}/")
    }


def deliveries_of(world: CloudWorld, key: str) -> list[dict[str, Any]]:
    from dogbreed.local.cloud.lifecycle import cloud_status

    return [item for item in cloud_status(world.state)["deliveries"] if item["detail"] == key]


# --- the middleware still intercepts moto -------------------------------------------------------


def test_aws_fault_reaches_a_plain_boto3_call(cloud_world: CloudWorld, faults: FaultClient) -> None:
    # Given a DynamoDB fault on a table only this test names
    table = f"fault-canary-{uuid.uuid4().hex[:8]}"
    fault = faults.add(
        "aws",
        service="dynamodb",
        operation="PutItem",
        resource=table,
        error="ProvisionedThroughputExceededException",
    )
    dynamodb = cloud_world.session.client(
        "dynamodb",
        endpoint_url=cloud_world.state.aws_url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )

    # When a plain boto3 client writes to it, once with the fault and once after it is spent
    with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException):
        dynamodb.put_item(TableName=table, Item={"prediction_id": {"S": "x"}})
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.put_item(TableName=table, Item={"prediction_id": {"S": "x"}})

    # Then the first answer came from the fault (moto itself only knows the table does not exist)
    assert faults.get(fault["id"])["hits"] == 1


# --- the endpoint throttles or fails, then recovers --------------------------------------------


@pytest.mark.parametrize("error", ["ThrottlingException", "ServiceUnavailable"])
def test_endpoint_errors_then_recovery_lose_and_duplicate_nothing(
    cloud_world: CloudWorld, faults: FaultClient, prefix: str, error: str
) -> None:
    budget = scaled(4, 8)  # < DROP_ENDPOINT_ATTEMPTS: no drop can exhaust its retries on it
    assert budget < DROP_ENDPOINT_ATTEMPTS
    requests = scaled(5, 50)
    before = api_snapshot(cloud_world)

    # Given an endpoint that fails its next `budget` invocations
    api_fault = faults.add("endpoint", error=error, count=budget)
    # When API requests arrive one after another
    responses = [post_image(cloud_world, index % 3) for index in range(requests)]

    # Then each one succeeded (the function's client retried) or was told to retry later
    for response in responses:
        if response.status_code != 201:
            assert_retry_later(response, "endpoint_unavailable")
    assert faults.get(api_fault["id"])["hits"] == budget
    assert responses[-1].status_code == 201
    created = [response.json()["prediction_id"] for response in responses if response.status_code == 201]
    assert_api_reconciles(before, api_snapshot(cloud_world), created)

    # And when images are dropped while the endpoint fails again
    drop_fault = faults.add("endpoint", error=error, count=budget)
    keys = drop_images(cloud_world, prefix, scaled(5, 50))
    state = wait_for_records(cloud_world, prefix, keys)

    # Then every drop ends with exactly one record
    assert faults.get(drop_fault["id"])["hits"] == budget
    assert state.exactly_one_record_each(keys)
    assert not dead_letters(cloud_world, keys, timeout=2)


# --- the endpoint is down ------------------------------------------------------------------------


def test_endpoint_down_is_503_and_drops_land_in_the_dead_letter_queue(
    cloud_world: CloudWorld, faults: FaultClient, prefix: str
) -> None:
    before = api_snapshot(cloud_world)
    faults.add("endpoint", error="ServiceUnavailable", count=None)

    # When API requests arrive and images are dropped while the endpoint is down
    responses = [post_image(cloud_world) for _ in range(scaled(3, 10))]
    keys = drop_images(cloud_world, prefix, scaled(5, 50))
    parked = dead_letters(cloud_world, keys, timeout=DROP_TIMEOUT_SECONDS)

    # Then every request was told to retry, and every drop, retried and dead-lettered once, has no record
    for response in responses:
        assert_retry_later(response, "endpoint_unavailable")
    assert_api_reconciles(before, api_snapshot(cloud_world), [])
    assert {key: len(events) for key, events in parked.items()} == dict.fromkeys(keys, 1)
    assert reconcile_drops(cloud_world, prefix, keys).no_record(keys)

    # And once it is back, redriving the dead letters gives exactly one record each
    faults.clear()
    for key in keys:
        resend_event(cloud_world, parked[key][0])
    assert wait_for_records(cloud_world, prefix, keys).exactly_one_record_each(keys)


# --- the endpoint is gone: the alarms an operator gets ----------------------------------------


def alarm_state(world: CloudWorld, logical_id: str) -> str:
    """The state CloudWatch's DescribeAlarms reports for one of the template's alarms."""
    name = load_stack().physical_name(logical_id)
    [alarm] = world.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(alarm["StateValue"])


def in_state(world: CloudWorld, logical_id: str, state: str) -> Callable[[], bool]:
    return lambda: alarm_state(world, logical_id) == state


def test_a_deleted_endpoint_puts_the_api_and_endpoint_alarms_in_alarm(
    cloud_world: CloudWorld, faults: FaultClient, tiny_model_dir: Path
) -> None:
    # Given the endpoint serving, its instances reporting (the health alarm OK)
    endpoint = cloud_world.outputs["EndpointName"]
    wait_for(in_state(cloud_world, "EndpointInstancesAlarm", "OK"), timeout=60, what="health OK")

    # When the endpoint disappears (deleted, or a new EndpointName the functions do not call yet)
    # while requests keep coming
    sagemaker = cloud_world.state.client("sagemaker")
    sagemaker.delete_endpoint(EndpointName=endpoint)
    try:
        responses = [post_image(cloud_world) for _ in range(6)]

        # Then every request was told to retry, and CloudWatch shows the API's 5xx alarm and the
        # endpoint's health alarm in ALARM
        for response in responses:
            assert_retry_later(response, "endpoint_unavailable")
        for alarm in ("ApiServerErrorsAlarm", "EndpointInstancesAlarm"):
            wait_for(in_state(cloud_world, alarm, "ALARM"), timeout=90, what=f"{alarm} in ALARM")
    finally:
        deploy_model_dir(cloud_world.state, tiny_model_dir, name=f"dogbreed-tiny-{uuid.uuid4().hex[:8]}")

    # And once an endpoint serves again, its health alarm returns to OK
    wait_for(in_state(cloud_world, "EndpointInstancesAlarm", "OK"), timeout=90, what="health OK")


# --- a DynamoDB write fails after the S3 result was written ------------------------------------


def test_dynamodb_write_failure_after_the_result_object_reruns_to_one_record(
    cloud_world: CloudWorld, faults: FaultClient, prefix: str
) -> None:
    # Given the Predictions write of each drop's first invocation fails (every attempt of it)
    keys = [f"incoming/{prefix}/dog-{index}.jpg" for index in range(scaled(5, 20))]
    injected = [
        faults.add(
            "aws",
            service="dynamodb",
            operation="PutItem",
            resource=result_key(key),
            error="ProvisionedThroughputExceededException",
            count=FUNCTION_DYNAMODB_ATTEMPTS,
        )
        for key in keys
    ]

    # When the images are dropped
    assert drop_images(cloud_world, prefix, len(keys)) == keys
    state = wait_for_records(cloud_world, prefix, keys)

    # Then each first run failed after writing its result object, and the re-run gave one record
    assert [faults.get(fault["id"])["hits"] for fault in injected] == [FUNCTION_DYNAMODB_ATTEMPTS] * len(keys)
    assert state.exactly_one_record_each(keys)
    assert not dead_letters(cloud_world, keys, timeout=2)


def test_dynamodb_write_failure_on_the_api_is_503_with_no_orphan(
    cloud_world: CloudWorld, faults: FaultClient
) -> None:
    before = api_snapshot(cloud_world)
    fault = faults.add(
        "aws",
        service="dynamodb",
        operation="PutItem",
        resource=cloud_world.outputs["PredictionsTableName"],
        error="InternalServerError",
        count=None,
    )

    failed = [post_image(cloud_world) for _ in range(scaled(3, 10))]
    faults.clear(fault["id"])
    recovered = post_image(cloud_world)

    for response in failed:
        assert_retry_later(response, "store_unavailable")
    assert recovered.status_code == 201, recovered.text
    assert_api_reconciles(before, api_snapshot(cloud_world), [recovered.json()["prediction_id"]])


# --- a duplicate S3 event --------------------------------------------------------------------------


def test_duplicate_s3_events_give_exactly_one_record(
    cloud_world: CloudWorld, faults: FaultClient, prefix: str
) -> None:
    keys = drop_images(cloud_world, prefix, scaled(3, 20))
    assert wait_for_records(cloud_world, prefix, keys).exactly_one_record_each(keys)
    stored = records_created(cloud_world, prefix)

    # When the same "Object Created" event is delivered twice more for each image
    for key in keys:
        seen = {item["event_id"] for item in deliveries_of(cloud_world, key)}
        event = object_created_event(cloud_world, key)
        resend_event(cloud_world, event)
        resend_event(cloud_world, event)

        def redelivered(key: str = key, seen: set[str] = seen) -> list[dict[str, Any]] | None:
            new = [item for item in deliveries_of(cloud_world, key) if item["event_id"] not in seen]
            return new if len(new) >= 2 else None

        new = wait_for(redelivered, timeout=60, what=f"two redeliveries of {key}", interval=0.2)
        # Then both were handled (replayed), not failed
        assert [item["outcome"] for item in new] == ["delivered", "delivered"]

    # And each image still has exactly one record, the one stored first (replayed, not recomputed)
    assert reconcile_drops(cloud_world, prefix, keys).exactly_one_record_each(keys)
    assert records_created(cloud_world, prefix) == stored


# --- the training job fails mid-pipeline --------------------------------------------------------


def test_training_failure_fails_the_execution_and_the_old_endpoint_keeps_serving(
    cloud_world: CloudWorld, faults: FaultClient, tmp_path: Path
) -> None:
    sagemaker = cloud_world.client("sagemaker")
    endpoint = cloud_world.outputs["EndpointName"]
    config_before = sagemaker.describe_endpoint(EndpointName=endpoint)
    version_before = served_model_version(cloud_world)
    # Given every tuning trial's training job dies a second after its process starts
    fault = faults.add("training", resource="hpo-", count=None, delay_seconds=1.0)

    # When a dataset lands and starts the pipeline
    dataset_id = upload_training_run(cloud_world, tmp_path)

    def ended() -> dict[str, Any] | None:
        found = execution_for(cloud_world, dataset_id)
        return found if found and found["status"] != "RUNNING" else None

    execution = wait_for(ended, timeout=600, what="the pipeline execution to end", interval=2.0)

    # Then the execution failed cleanly at the tuning stage, with the failure recorded
    assert (execution["status"], execution["error"]) == ("FAILED", "TuningFailed")
    [record] = run_records(cloud_world, dataset_id)
    assert (record["status"], record["stage"]) == ("failed", "Tune")
    tuning_job = record["model_version"].replace("dogbreed-", "hpo-", 1)
    trials = sagemaker.list_training_jobs(NameContains=tuning_job, MaxResults=100)
    failed = [
        sagemaker.describe_training_job(TrainingJobName=job["TrainingJobName"])
        for job in trials["TrainingJobSummaries"]
    ]
    assert failed and all(job["TrainingJobStatus"] == "Failed" for job in failed)
    assert all(fault["id"] in job["FailureReason"] for job in failed)
    assert faults.get(fault["id"])["hits"] == len(failed)
    # And the old endpoint config still serves the old model
    config_after = sagemaker.describe_endpoint(EndpointName=endpoint)
    assert config_after["EndpointConfigName"] == config_before["EndpointConfigName"]
    assert served_model_version(cloud_world) == version_before


# --- an endpoint update fails ------------------------------------------------------------------------


def test_failed_endpoint_update_keeps_the_old_model_serving(
    cloud_world: CloudWorld, faults: FaultClient, tiny_model_dir: Path, tmp_path: Path
) -> None:
    sagemaker = cloud_world.client("sagemaker")
    endpoint = cloud_world.outputs["EndpointName"]
    before = sagemaker.describe_endpoint(EndpointName=endpoint)
    old_version = served_model_version(cloud_world)
    candidate = candidate_model(tiny_model_dir, tmp_path / "candidate")
    fault = faults.add("endpoint_update", resource=endpoint)

    # When the endpoint is updated to a new model while requests keep arriving
    during: list[httpx.Response] = []
    update = threading.Thread(
        target=deploy_model_dir,
        args=(cloud_world.state, candidate),
        kwargs={"name": f"candidate-{uuid.uuid4().hex[:8]}"},
    )
    update.start()
    while update.is_alive():
        during.append(post_image(cloud_world))
    update.join()
    after = [post_image(cloud_world) for _ in range(3)]

    # Then the update failed with a reason and the endpoint kept its config
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    assert faults.get(fault["id"])["hits"] == 1
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == before["EndpointConfigName"]
    assert fault["id"] in described["FailureReason"]
    # And every request, during and after, got the old model
    assert during and all(response.status_code == 201 for response in during + after)
    assert {response.json()["model_version"] for response in during + after} == {old_version}
