"""SummarizeBatch: the batch state machine's last task (Step Functions `lambda:invoke`).

Event: `{"bucket", "batch_id", "model_version", "started_at", "job": <DescribeTransformJob> | null,
"failure": {"error", "cause"} | null}`. Answer: the summary written to `batches/<id>/summary.json`
without its list of rejections (batch_inference.summary).
"""

from __future__ import annotations

import os
from typing import Any

import aws_clients
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from batch_inference.summary import summarize_batch

logger = Logger()
INFERENCE_BUCKET = os.environ["INFERENCE_BUCKET"]


def s3_client() -> Any:
    return aws_clients.client("s3", max_pool_connections=32)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("bucket") != INFERENCE_BUCKET:
        raise ValueError("this function summarizes batches of the stack's inference bucket only")
    summary = summarize_batch(
        s3_client(),
        INFERENCE_BUCKET,
        str(event["batch_id"]),
        model_version=event.get("model_version"),
        started_at=str(event["started_at"]),
        job=event.get("job"),
        failure=event.get("failure"),
    )
    logger.info("batch summarized", extra={"summary": summary})
    return summary
