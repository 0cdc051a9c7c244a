"""S3 source guard: URI parsing, the bucket allow-list and capped reads (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from prediction.s3_guard import (
    parse_s3_uri,
    read_s3_object,
)
from request_guards.errors import BadRequestError, FetchError, ForbiddenSourceError, PayloadTooLargeError

ALLOWED = frozenset({"inference-bucket", "data.bucket-2"})


def test_allowed_uri_is_split_into_bucket_and_key() -> None:
    assert parse_s3_uri("s3://inference-bucket/incoming/a b/dog.jpg", ALLOWED) == (
        "inference-bucket",
        "incoming/a b/dog.jpg",
    )


def test_bucket_outside_the_allow_list_is_refused() -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        parse_s3_uri("s3://someone-elses-bucket/dog.jpg", ALLOWED)
    assert (caught.value.status, caught.value.code) == (422, "s3_bucket_not_allowed")


@pytest.mark.parametrize(
    "uri",
    [
        "https://inference-bucket/dog.jpg",
        "s3://",
        "s3://inference-bucket",
        "s3://inference-bucket/",
        "s3://In_Valid/k",
        42,
    ],
)
def test_malformed_uris_are_bad_requests(uri: Any) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_s3_uri(uri, ALLOWED)
    assert caught.value.code == "invalid_s3_uri"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="inference-bucket")
        yield client


def test_reads_an_object(s3: Any) -> None:
    s3.put_object(Bucket="inference-bucket", Key="incoming/dog.jpg", Body=b"jpeg-bytes")
    assert read_s3_object("inference-bucket", "incoming/dog.jpg", client=s3) == b"jpeg-bytes"


def test_object_over_the_cap_is_413(s3: Any) -> None:
    s3.put_object(Bucket="inference-bucket", Key="big.jpg", Body=b"x" * 2048)
    with pytest.raises(PayloadTooLargeError) as caught:
        read_s3_object("inference-bucket", "big.jpg", max_bytes=1024, client=s3)
    assert caught.value.code == "body_too_large"


def test_missing_object_is_a_fetch_error(s3: Any) -> None:
    with pytest.raises(FetchError) as caught:
        read_s3_object("inference-bucket", "nope.jpg", client=s3)
    assert (caught.value.status, caught.value.code) == (422, "s3_object_not_found")
