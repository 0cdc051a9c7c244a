"""PrepareBatch: the batch's manifest checked and turned into the transform job's input, before any
instance starts.

An unusable manifest (not JSON, unknown fields, keys outside the inference bucket, nothing to
classify) is an answer, `{"valid": false, "error", "reason"}`, which the state machine turns into
`ManifestInvalid`. Inputs that exist but cannot be sent (missing keys, objects over the payload cap)
are rejected one by one under `rejected/` and the others go on. The transform job reads
`input.manifest`, SageMaker's ManifestFile format: `[{"prefix": "s3://<bucket>/"}, "<key>", ...]`.
Storage errors (no access, no such bucket) raise.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from botocore.exceptions import ClientError

from batch_inference.layout import (
    BATCH_ID_PATTERN,
    BATCHES_PREFIX,
    input_manifest_key,
    manifest_key,
    results_prefix,
)
from batch_inference.manifest import BatchManifest, ManifestError, parse_manifest
from batch_inference.rejections import rejection, write_rejection

# Batch Transform's MaxPayloadInMB for one image (SplitType None: the whole object is one request);
# the serving handler refuses larger bodies too (request_guards.image_guard.DEFAULT_MAX_BYTES).
MAX_PAYLOAD_MB: Final = 6
MAX_PAYLOAD_BYTES: Final = MAX_PAYLOAD_MB * 1024 * 1024
WORKERS: Final = 16
_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})


def _invalid(code: str, reason: str) -> dict[str, Any]:
    return {"valid": False, "error": code, "reason": reason}


def _read_manifest(s3: Any, bucket: str, batch_id: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=manifest_key(batch_id))["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            raise ManifestError("missing_manifest", f"{manifest_key(batch_id)} does not exist") from error
        raise
    try:
        return json.loads(body)
    except ValueError as error:
        raise ManifestError("invalid_manifest", f"the manifest is not JSON: {error}") from error


def _listed(s3: Any, bucket: str, prefix: str) -> list[tuple[str, int]]:
    return [
        (item["Key"], int(item["Size"]))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/") and not item["Key"].startswith(BATCHES_PREFIX)
    ]


def _sizes(s3: Any, bucket: str, keys: tuple[str, ...]) -> list[tuple[str, int | None]]:
    def size(key: str) -> tuple[str, int | None]:
        try:
            return key, int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return key, None
            raise

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(size, keys))


def prepare_batch(s3: Any, bucket: str, batch_id: str) -> dict[str, Any]:
    """Check the manifest, reject what cannot be sent, write the transform job's input manifest."""
    if not BATCH_ID_PATTERN.match(batch_id):
        return _invalid("invalid_batch_id", f"{batch_id[:200]!r} is not a batch id")
    try:
        manifest: BatchManifest = parse_manifest(_read_manifest(s3, bucket, batch_id), bucket=bucket)
    except ManifestError as error:
        return _invalid(error.code, error.message)
    if manifest.keys is not None:
        found = _sizes(s3, bucket, manifest.keys)
    else:
        found = list(_listed(s3, bucket, manifest.prefix or ""))
        if not found:
            return _invalid(
                "empty_manifest", f"no object under the prefix {manifest.prefix!r}: nothing to classify"
            )
    accepted: list[str] = []
    rejected = 0
    for key, size in found:
        if size is None:
            reason = ("not_found", "the object does not exist")
        elif size > MAX_PAYLOAD_BYTES:
            reason = (
                "payload_too_large",
                f"the object has {size} bytes; an image may have {MAX_PAYLOAD_BYTES}",
            )
        elif size == 0:
            reason = ("empty_object", "the object is empty")
        else:
            accepted.append(key)
            continue
        write_rejection(s3, bucket, batch_id, key, rejection(bucket, key, *reason, stage="prepare"))
        rejected += 1
    manifest_uri = f"s3://{bucket}/{input_manifest_key(batch_id)}"
    if accepted:
        body = json.dumps([{"prefix": f"s3://{bucket}/"}, *accepted]).encode()
        s3.put_object(
            Bucket=bucket, Key=input_manifest_key(batch_id), Body=body, ContentType="application/json"
        )
    return {
        "valid": True,
        "batch_id": batch_id,
        "inputs": len(found),
        "accepted": len(accepted),
        "rejected": rejected,
        "top_k": manifest.top_k,
        "max_payload_mb": MAX_PAYLOAD_MB,
        "model": manifest.model,
        "manifest_uri": manifest_uri,
        "output_uri": f"s3://{bucket}/{results_prefix(batch_id)}",
    }
