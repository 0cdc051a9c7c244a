"""Idempotency for the at-least-once S3 trigger: Powertools idempotency over the DynamoDB table
(partition key `id`, TTL attribute `expiration`: the Powertools defaults).

The key is bucket + key + version id (or ETag on an unversioned bucket), so a re-delivered or
duplicated "Object Created" event replays the stored outcome instead of creating a second record.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from prediction.settings import Settings

# EventBridge retries an event for up to 24 hours; a duplicate can arrive any time within that.
IDEMPOTENCY_EXPIRY_SECONDS = 24 * 60 * 60
OBJECT_KEY_JMESPATH = "[bucket, key, version_id, etag]"


def build_persistence_layer(settings: Settings, dynamodb_client: Any) -> DynamoDBPersistenceLayer:
    # Shares the service's client: a second boto3 session would load the DynamoDB model again at init.
    return DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb_client)


def build_object_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=OBJECT_KEY_JMESPATH,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
    )
