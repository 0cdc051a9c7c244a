"""ValidateDataset: the training pipeline's first task (Step Functions `lambda:invoke`).

Event: `{"bucket": <data bucket>, "dataset_id": "...", "prefix": "datasets/<id>/"}`.
Answer: `{"valid": bool, "summary": "<readable report>", "report": {...}}`.
"""

from __future__ import annotations

import os
from typing import Any

import aws_clients
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from dataset_gate import DatasetRequest, validate_dataset

logger = Logger()
DATA_BUCKET = os.environ["DATA_BUCKET"]


def s3_client() -> Any:
    # Many small GETs in parallel: a pool as large as the checker's thread count.
    return aws_clients.client("s3", max_pool_connections=32)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = DatasetRequest.parse(event, allowed_bucket=DATA_BUCKET)
    result = validate_dataset(s3_client(), request)
    logger.info(
        "dataset checked",
        extra={"dataset_id": request.dataset_id, "valid": result["valid"], "report": result["report"]},
    )
    return result
