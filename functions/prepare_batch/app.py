"""PrepareBatch: the batch state machine's first task (Step Functions `lambda:invoke`).

Event: `{"bucket": <inference bucket>, "batch_id": "..."}`.
Answer: `{"valid": true, "accepted", "rejected", "top_k", "model", "manifest_uri", "output_uri", ...}`
or `{"valid": false, "error", "reason"}` (batch_inference.prepare).
"""

from __future__ import annotations

import os
from typing import Any

import aws_clients
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from batch_inference.prepare import prepare_batch

logger = Logger()
INFERENCE_BUCKET = os.environ["INFERENCE_BUCKET"]


def s3_client() -> Any:
    return aws_clients.client("s3", max_pool_connections=16)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("bucket") != INFERENCE_BUCKET:
        raise ValueError("this function prepares batches of the stack's inference bucket only")
    result = prepare_batch(s3_client(), INFERENCE_BUCKET, str(event.get("batch_id", "")))
    logger.info("batch prepared", extra={"batch_id": event.get("batch_id"), "result": result})
    return result
