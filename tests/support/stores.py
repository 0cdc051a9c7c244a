"""What the shared local cloud's stores hold, read by the tests themselves (never through the code
under test): result and rejection objects, Predictions items, dead-lettered events."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from prediction.item import StoredPrediction, from_item

from tests.support.local_cloud import CloudWorld

API_RESULTS_PREFIX = "results/api/"


def result_key(incoming_key: str) -> str:
    return f"results/{incoming_key.removeprefix('incoming/')}.json"


def object_keys(world: CloudWorld, prefix: str) -> list[str]:
    paginator = world.client("s3").get_paginator("list_objects_v2")
    return [
        item["Key"]
        for page in paginator.paginate(Bucket=world.outputs["InferenceBucketName"], Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def prediction_items(world: CloudWorld) -> list[StoredPrediction]:
    """Every Predictions item, read with this test's own scan and decoded with the table's mapper."""
    paginator = world.client("dynamodb").get_paginator("scan")
    pages = paginator.paginate(TableName=world.outputs["PredictionsTableName"], ConsistentRead=True)
    return [from_item(item) for page in pages for item in page["Items"]]


@dataclass
class DropReconciliation:
    """Per dropped key: how many result objects, items and rejections it has."""

    results: Counter[str]
    items: Counter[str]
    rejected: Counter[str]

    def exactly_one_record_each(self, keys: list[str]) -> bool:
        return all(self.results[key] == 1 and self.items[key] == 1 for key in keys) and not self.rejected

    def no_record(self, keys: list[str]) -> bool:
        return not any(self.results[key] or self.items[key] for key in keys) and not self.rejected


def reconcile_drops(world: CloudWorld, prefix: str, keys: list[str]) -> DropReconciliation:
    by_result = {result_key(key): key for key in keys}
    results = Counter(by_result[key] for key in object_keys(world, f"results/{prefix}/") if key in by_result)
    items = Counter(
        by_result[item.result_key] for item in prediction_items(world) if item.result_key in by_result
    )
    rejected = Counter(object_keys(world, f"rejected/{prefix}/"))
    return DropReconciliation(results=results, items=items, rejected=rejected)


@dataclass
class ApiSnapshot:
    results: set[str]
    items: dict[str, str]  # prediction id -> result key of API predictions


def api_snapshot(world: CloudWorld) -> ApiSnapshot:
    items = {
        item.record.prediction_id: item.result_key
        for item in prediction_items(world)
        if item.result_key.startswith(API_RESULTS_PREFIX)
    }
    return ApiSnapshot(results=set(object_keys(world, API_RESULTS_PREFIX)), items=items)


def assert_api_reconciles(before: ApiSnapshot, after: ApiSnapshot, created_ids: list[str]) -> None:
    """Exactly the 201s' predictions were stored, each once in both stores; failures left nothing."""
    new_items = {key: value for key, value in after.items.items() if key not in before.items}
    assert sorted(new_items) == sorted(created_ids)
    assert len(set(created_ids)) == len(created_ids)
    assert after.results - before.results == {f"{API_RESULTS_PREFIX}{pid}.json" for pid in created_ids}
    assert set(new_items.values()) == after.results - before.results


def dead_letter_keys(world: CloudWorld, prefix: str) -> list[str]:
    """Object keys under `prefix` of the events parked in the S3 function's DLQ, read without consuming
    them: every message received is made visible again at once."""
    sqs = world.client("sqs")
    url = world.outputs["PredictS3DeadLetterQueueUrl"]
    keys: list[str] = []
    handles: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    ):
        for message in messages:
            handles.append(message["ReceiptHandle"])
            key = json.loads(message["Body"]).get("detail", {}).get("object", {}).get("key", "")
            if key.startswith(prefix):
                keys.append(key)
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return keys
