"""Counting what the stores hold for a load run: S3 results and rejections, Predictions items and the
S3 function's dead-letter queue (read without consuming it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prediction.item import REFERENCE_ATTRIBUTES, ItemReference, reference_from_item

from dogbreed.bench.load_reconcile import StoreSnapshot
from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.state import CloudState
from dogbreed.local.lambda_runtime.invocation_record import event_from_dead_letter

API_RESULTS_PREFIX = "results/api/"


@dataclass(frozen=True)
class Stores:
    """The run's view of the stack: clients and names from the stack outputs."""

    s3: Any
    dynamodb: Any
    sqs: Any
    bucket: str
    table: str
    dead_letter_queue_url: str

    @classmethod
    def for_state(cls, state: CloudState) -> Stores:
        session = cloud_state.local_session()
        outputs = state.outputs
        return cls(
            s3=session.client("s3", endpoint_url=state.aws_url),
            dynamodb=session.client("dynamodb", endpoint_url=state.aws_url),
            sqs=session.client("sqs", endpoint_url=state.aws_url),
            bucket=outputs["InferenceBucketName"],
            table=outputs["PredictionsTableName"],
            dead_letter_queue_url=outputs["PredictS3DeadLetterQueueUrl"],
        )

    def keys(self, prefix: str) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def items(self) -> Iterator[ItemReference]:
        """Every Predictions item's reference, read with the table's one mapper; the scan is projected
        on the reference attributes (it runs once a second while the drops settle)."""
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table, ProjectionExpression=", ".join(REFERENCE_ATTRIBUTES), ConsistentRead=True
        )
        for page in pages:
            yield from (reference_from_item(item) for item in page.get("Items", []))

    def dead_letter_keys(self) -> list[str]:
        """Object keys of the events parked in the DLQ (the S3 function's OnFailure destination: each
        message is Lambda's invocation record, the event under `requestPayload`), read without
        consuming them (every message received is made visible again at once)."""
        keys: list[str] = []
        handles: list[str] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                keys.append(dead_lettered_key(message["Body"]))
        for start in range(0, len(handles), 10):
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.dead_letter_queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, handle in enumerate(handles[start : start + 10])
                ],
            )
        return keys

    def snapshot(self, run_prefix: str, prediction_ids: set[str]) -> StoreSnapshot:
        """Count what the stores hold for the run: `run_prefix` is `load-<run id>/`."""
        snapshot = StoreSnapshot()
        incoming = f"incoming/{run_prefix}"
        for key in self.keys(API_RESULTS_PREFIX) if prediction_ids else ():
            prediction_id = key[len(API_RESULTS_PREFIX) :].removesuffix(".json")
            if prediction_id in prediction_ids:
                snapshot.api_result_ids.add(prediction_id)
        for key in self.keys(f"results/{run_prefix}"):
            snapshot.drop_result_keys[incoming_key_of(key, "results/")] += 1
        for key in self.keys(f"rejected/{run_prefix}"):
            snapshot.rejected_keys.add(incoming_key_of(key, "rejected/"))
        source = f"s3://{self.bucket}/"
        for item in self.items():
            if item.prediction_id in prediction_ids:
                snapshot.api_item_ids.add(item.prediction_id)
            elif item.input_ref.startswith(source + incoming):
                snapshot.drop_items[item.input_ref[len(source) :]] += 1
        for key in self.dead_letter_keys():
            if key.startswith(incoming):
                snapshot.dead_lettered[key] += 1
        return snapshot


def dead_lettered_key(body: str) -> str:
    """The object key of a dead-letter message: EventBridge parks the bare event, the function's
    OnFailure destination an invocation record with the event under `requestPayload`."""
    try:
        event = event_from_dead_letter(json.loads(body))
        return str(event["detail"]["object"]["key"])
    except (ValueError, KeyError, TypeError):
        return ""


def incoming_key_of(stored_key: str, prefix: str) -> str:
    """`results/a/b.jpg.json` (or `rejected/...`) -> `incoming/a/b.jpg`."""
    return "incoming/" + stored_key[len(prefix) :].removesuffix(".json")


def wait_accounted(
    stores: Stores, run_prefix: str, dropped: list[str], *, timeout: float, poll_seconds: float = 1.0
) -> bool:
    """Wait until every dropped image has a result and its item, a rejection or a DLQ message."""
    deadline = time.monotonic() + timeout
    while True:
        if stores.snapshot(run_prefix, set()).accounted(dropped) == len(dropped):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_seconds)
