"""One record per input that was not classified: `batches/<id>/rejected/<key>.json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from batch_inference.layout import rejected_key


def rejection(bucket: str, key: str, code: str, message: str, stage: str) -> dict[str, Any]:
    """`stage`: "prepare" (missing, too large: never sent) or "transform" (the model refused it)."""
    return {
        "input": f"s3://{bucket}/{key}",
        "code": code,
        "message": message,
        "stage": stage,
        "rejected_at": datetime.now(UTC).isoformat(),
    }


def write_rejection(s3: Any, bucket: str, batch_id: str, key: str, record: dict[str, Any]) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=rejected_key(batch_id, key),
        Body=json.dumps(record).encode(),
        ContentType="application/json",
    )
