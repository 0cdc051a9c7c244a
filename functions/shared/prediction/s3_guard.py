"""S3 sources of the prediction API: only `s3://bucket/key` URIs on an allow-list of buckets (the
functions' ALLOWED_S3_BUCKETS setting), read with a byte cap. The Lambda side only: the endpoint
takes image bytes and reads nothing.

bucket, key = parse_s3_uri(uri, settings.allowed_s3_buckets)
data = read_s3_object(bucket, key, max_bytes=6 * 2**20, client=s3)
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from request_guards.errors import BadRequestError, FetchError, ForbiddenSourceError, PayloadTooLargeError
from request_guards.image_guard import DEFAULT_MAX_BYTES

# S3 bucket naming rules (3-63 chars, lowercase letters, digits, dots, hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
MAX_KEY_LENGTH = 1024


def parse_s3_uri(uri: str, allowed_buckets: Collection[str]) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key) when the bucket is allowed; raises an InputError otherwise."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise BadRequestError("s3_uri must look like s3://bucket/key", code="invalid_s3_uri")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise BadRequestError("s3_uri has an invalid bucket name", code="invalid_s3_uri")
    if not key or len(key) > MAX_KEY_LENGTH or any(ord(char) < 0x20 for char in key):
        raise BadRequestError("s3_uri has an empty or invalid key", code="invalid_s3_uri")
    if bucket not in allowed_buckets:
        raise ForbiddenSourceError(
            f"reading from bucket {bucket!r} is not allowed", code="s3_bucket_not_allowed"
        )
    return bucket, key


def read_s3_object(bucket: str, key: str, *, max_bytes: int = DEFAULT_MAX_BYTES, client: Any = None) -> bytes:
    """Read one object, refusing it (413) when larger than `max_bytes`. boto3 is imported only here."""
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2})
        )
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            raise FetchError(f"s3://{bucket}/{key} does not exist", code="s3_object_not_found") from error
        raise FetchError(f"s3://{bucket}/{key} could not be read", code="s3_read_failed") from error
    except BotoCoreError as error:
        raise FetchError(f"s3://{bucket}/{key} could not be read", code="s3_read_failed") from error
    body = response["Body"]
    try:
        length = int(response.get("ContentLength") or 0)
        if length > max_bytes:
            raise PayloadTooLargeError(
                f"the S3 object is {length} bytes; the limit is {max_bytes} bytes", code="body_too_large"
            )
        data: bytes = body.read(max_bytes + 1)
    finally:
        body.close()
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"the S3 object is larger than {max_bytes} bytes", code="body_too_large")
    return data
