"""ValidateDataset: the training pipeline's first task (Step Functions `lambda:invoke`).

Event: `{"bucket": <data bucket>, "dataset_id": "...", "prefix": "datasets/<id>/"}`.
Answer: `{"valid": bool, "summary": "<readable report>", "report": {...}}`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from dataset_gate import DatasetRequest, validate_dataset

logger = Logger()
DATA_BUCKET = os.environ["DATA_BUCKET"]


@lru_cache(maxsize=1)
def s3_client() -> Any:
    # Many small GETs in parallel: a pool as large as the checker's thread count.
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=32,
    )
    return boto3.client("s3", config=config)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = DatasetRequest.parse(event, allowed_bucket=DATA_BUCKET)
    result = validate_dataset(s3_client(), request)
    logger.info(
        "dataset checked",
        extra={"dataset_id": request.dataset_id, "valid": result["valid"], "report": result["report"]},
    )
    return result
