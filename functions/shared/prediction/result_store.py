"""Where results live: one JSON object per prediction in the inference bucket and one item per
prediction in the Predictions table (TTL attribute `expires_at`), plus the rejection records.

Bucket layout (ARCHITECTURE.md): `incoming/<path>` -> `results/<path>.json` or `rejected/<path>.json`;
API predictions are stored as `results/api/<prediction_id>.json`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from request_guards.errors import PayloadTooLargeError

from prediction.errors import PredictionNotFoundError, StoreUnavailableError
from prediction.item import StoredPrediction, from_item, item_key, to_item
from prediction.models import PredictionRecord
from prediction.observability import logger

INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"
REJECTED_PREFIX = "rejected/"
API_RESULTS_PREFIX = "results/api/"
JSON_CONTENT_TYPE = "application/json"


def api_result_key(prediction_id: str) -> str:
    return f"{API_RESULTS_PREFIX}{prediction_id}.json"


def relative_incoming_path(key: str) -> str | None:
    """`incoming/a/b.jpg` -> `a/b.jpg`; None for a key outside `incoming/`."""
    if not key.startswith(INCOMING_PREFIX) or len(key) == len(INCOMING_PREFIX) or key.endswith("/"):
        return None
    return key[len(INCOMING_PREFIX) :]


def result_key_for(relative_path: str) -> str:
    return f"{RESULTS_PREFIX}{relative_path}.json"


def rejected_key_for(relative_path: str) -> str:
    return f"{REJECTED_PREFIX}{relative_path}.json"


class ResultStore:
    def __init__(
        self, s3_client: Any, dynamodb_client: Any, *, bucket: str, table: str, ttl_days: int
    ) -> None:
        self._s3 = s3_client
        self.dynamodb = dynamodb_client
        self._bucket = bucket
        self._table = table
        self._ttl = timedelta(days=ttl_days)

    def save(
        self, record: PredictionRecord, *, result_key: str, input_kind: str, input_ref: str = ""
    ) -> None:
        """Write the S3 JSON first, then the item: an item always points at an existing object.

        Either write failing raises StoreUnavailableError with nothing left behind: a result object
        whose item could not be written is removed (best effort), so a retry starts clean.
        """
        document = record.model_dump(mode="json") | {"input_kind": input_kind}
        if input_ref:
            document["input"] = input_ref
        try:
            self._put_json(result_key, document)
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailableError("the result could not be stored; retry shortly") from error
        expires_at = int((record.created_at + self._ttl).timestamp())
        item = to_item(StoredPrediction(record, result_key, input_kind, expires_at, input_ref))
        # A deterministic id (S3 drops) overwrites its own item on a retry: still exactly one record.
        try:
            self.dynamodb.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as error:
            self._discard(result_key)
            raise StoreUnavailableError("the result could not be stored; retry shortly") from error

    def get(self, prediction_id: str) -> PredictionRecord:
        response = self.dynamodb.get_item(
            TableName=self._table, Key=item_key(prediction_id), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            raise PredictionNotFoundError(f"no prediction with id {prediction_id}")
        return from_item(item).record

    def save_rejection(
        self, *, rejected_key: str, source_key: str, code: str, message: str, at: datetime
    ) -> None:
        self._put_json(
            rejected_key,
            {
                "source_key": source_key,
                "reason": {"code": code, "message": message},
                "rejected_at": at.isoformat(),
            },
        )

    def read_object(self, bucket: str, key: str, version_id: str | None = None, *, max_bytes: int) -> bytes:
        """The object's bytes, refused (413) above `max_bytes` without reading it all.

        Raises botocore ClientError for S3 failures (NoSuchKey, throttling, ...): the caller decides
        which are final and which the trigger should retry.
        """
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        response = self._s3.get_object(**kwargs)
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > max_bytes:
                raise PayloadTooLargeError(
                    f"the object is {response['ContentLength']} bytes; the limit is {max_bytes} bytes",
                    code="body_too_large",
                )
            data: bytes = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(data) > max_bytes:
            raise PayloadTooLargeError(f"the object is larger than {max_bytes} bytes", code="body_too_large")
        return data

    def _discard(self, key: str) -> None:
        """Remove a result object whose item was not written. Best effort: a failure is logged, not
        raised, so the caller still reports the store error."""
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError):
            logger.warning("orphaned result object not removed", extra={"result_key": key})

    def _put_json(self, key: str, document: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(document, separators=(",", ":")).encode(),
            ContentType=JSON_CONTENT_TYPE,
        )


def is_missing_object(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code", "") in (
        "NoSuchKey",
        "404",
        "NotFound",
        "NoSuchVersion",
    )
