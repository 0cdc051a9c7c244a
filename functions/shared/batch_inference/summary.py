"""SummarizeBatch: after the transform job, every input ends as exactly one result or one rejection,
and `summary.json` says what the batch did.

The serving handler answers Batch Transform (Accept `application/jsonlines`) with one line per
input: predictions, or `{"rejected": {"code", "message"}}` for a file the model cannot read. A
rejection line becomes a `rejected/<key>.json` record and its `.out` is removed, so `results/` holds
predictions only. An input with no output after a completed job is rejected as `no_output`. The
summary counts results per top-1 breed and lists every rejection (PrepareBatch's too) with its
reason, the model version, the transform job (instance type and count, its seconds and the
instance-seconds it is billed for) and the batch's duration; a failed job is summarized with its failure.

Which outputs exist comes from one listing of the batch's folder, not from a GET per input: S3
answers a GET of a missing key with 403, not 404, unless the caller may list the bucket without
conditions (the function may list `batches/*` only), and the listing is cheaper too.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from batch_inference.layout import batch_prefix, input_manifest_key, rejected_prefix, result_key, summary_key
from batch_inference.rejections import rejection, write_rejection

WORKERS: Final = 32
_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    return body


def _listed(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def _sent(s3: Any, bucket: str, batch_id: str, existing: set[str]) -> list[str]:
    """The keys the transform job was given (input.manifest without its prefix entry)."""
    manifest = input_manifest_key(batch_id)
    body = _get(s3, bucket, manifest) if manifest in existing else None
    return [] if body is None else [str(key) for key in json.loads(body)[1:]]


def _outcome(
    s3: Any, bucket: str, batch_id: str, key: str, completed: bool, existing: set[str]
) -> tuple[str, Any]:
    """("result", breed) | ("rejected", record) | ("unprocessed", None) for one sent input."""
    output = result_key(batch_id, key)
    body = _get(s3, bucket, output) if output in existing else None
    if body is None:
        if not completed:
            return "unprocessed", None
        record = rejection(bucket, key, "no_output", "the transform job wrote no output for it", "transform")
        write_rejection(s3, bucket, batch_id, key, record)
        return "rejected", record
    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    first = lines[0] if lines else {}
    if "predictions" in first:
        predictions = first["predictions"]
        return "result", (predictions[0]["breed"] if predictions else None)
    reason = first.get("rejected", {}) if isinstance(first.get("rejected"), dict) else {}
    record = rejection(
        bucket,
        key,
        str(reason.get("code", "unreadable_output")),
        str(reason.get("message", "the model's answer has neither predictions nor a rejection")),
        "transform",
    )
    write_rejection(s3, bucket, batch_id, key, record)
    s3.delete_object(Bucket=bucket, Key=result_key(batch_id, key))
    return "rejected", record


def _prepare_rejections(s3: Any, bucket: str, batch_id: str, existing: set[str]) -> list[dict[str, Any]]:
    keys = sorted(key for key in existing if key.startswith(rejected_prefix(batch_id)))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        bodies = list(pool.map(lambda key: _get(s3, bucket, key), keys))
    records = [json.loads(body) for body in bodies if body is not None]
    return [record for record in records if record.get("stage") == "prepare"]


def _instant(value: Any) -> datetime:
    """An ISO-8601 string, or epoch milliseconds (how Step Functions passes SageMaker's timestamps)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    return datetime.fromisoformat(str(value))


def _seconds(start: Any, end: Any) -> float | None:
    if not start or not end:
        return None
    return round((_instant(end) - _instant(start)).total_seconds(), 3)


def summarize_batch(
    s3: Any,
    bucket: str,
    batch_id: str,
    *,
    model_version: str | None,
    started_at: str,
    job: dict[str, Any] | None = None,
    failure: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Settle every input, write summary.json; returns the summary without the rejection list."""
    completed = failure is None
    existing = set(_listed(s3, bucket, batch_prefix(batch_id)))
    sent = _sent(s3, bucket, batch_id, existing)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(lambda key: _outcome(s3, bucket, batch_id, key, completed, existing), sent))
    breeds = Counter(value for kind, value in outcomes if kind == "result" and value is not None)
    rejections = _prepare_rejections(s3, bucket, batch_id, existing) + [
        value for kind, value in outcomes if kind == "rejected"
    ]
    finished_at = datetime.now(UTC).isoformat()
    job = job or {}
    transform_seconds = _seconds(job.get("TransformStartTime"), job.get("TransformEndTime"))
    summary: dict[str, Any] = {
        "batch_id": batch_id,
        "status": "completed" if completed else "failed",
        "model_version": model_version,
        "inputs": len(sent) + sum(1 for record in rejections if record["stage"] == "prepare"),
        "results": sum(1 for kind, _ in outcomes if kind == "result"),
        "rejected": len(rejections),
        "unprocessed": sum(1 for kind, _ in outcomes if kind == "unprocessed"),
        "breeds": dict(breeds.most_common()),
        "rejections": [
            {key: record[key] for key in ("input", "code", "message", "stage")} for record in rejections
        ],
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_seconds": _seconds(started_at, finished_at),
        "transform_job": {
            "name": job.get("TransformJobName"),
            "instance_type": job.get("TransformResources", {}).get("InstanceType"),
            "instance_count": job.get("TransformResources", {}).get("InstanceCount"),
            "transform_seconds": transform_seconds,
            # What the job is billed for: its seconds on every instance (SageMaker bills per second).
            "instance_seconds": None
            if transform_seconds is None
            else round(transform_seconds * int(job.get("TransformResources", {}).get("InstanceCount", 1)), 3),
        }
        if job
        else None,
        "failure": failure,
    }
    s3.put_object(
        Bucket=bucket,
        Key=summary_key(batch_id),
        Body=json.dumps(summary, indent=1).encode(),
        ContentType="application/json",
    )
    return {key: value for key, value in summary.items() if key != "rejections"}
