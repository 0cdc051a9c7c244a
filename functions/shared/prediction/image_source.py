"""Turn every accepted input (URL, base64, s3_uri, binary body, uploaded object) into checked image
bytes plus the content type the endpoint is sent: the endpoint takes image bytes only, so this is the
one place that fetches (`url_guard`, `s3_guard`). The image checks come from `request_guards` (the
same package the endpoint's inference handler uses), so the rules exist once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from request_guards.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from request_guards.image_guard import check_body_size, load_image

from prediction import s3_guard, url_guard
from prediction.models import PredictionRequest

# Content types accepted as a raw request body (also the API's BinaryMediaTypes).
BINARY_CONTENT_TYPES = frozenset(
    {"image/jpeg", "image/png", "application/x-image", "application/octet-stream"}
)
# The check needs no pixels, only a full pass over the data: a JPEG is decoded at the largest DCT
# reduction (1/8 scale), which still reads and verifies every entropy-coded block.
CHECK_MIN_SIZE = 1

UrlFetcher = Callable[[str], bytes]


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    content_type: str


def endpoint_content_type(data: bytes) -> str:
    """The endpoint's content type for already-validated image bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return "application/x-image"


class ImageSource:
    def __init__(
        self,
        *,
        max_image_bytes: int,
        allowed_s3_buckets: tuple[str, ...],
        s3_client: Any,
        url_fetcher: UrlFetcher,
    ) -> None:
        self.max_image_bytes = max_image_bytes
        self._allowed_buckets = frozenset(allowed_s3_buckets)
        self._s3 = s3_client
        self._fetch_url = url_fetcher

    def from_request(self, request: PredictionRequest) -> CheckedImage:
        if request.image is not None:
            return self.check(self._decode_base64(request.image))
        if request.url is not None:
            return self.check(self._fetch_url(request.url))
        assert request.s3_uri is not None
        bucket, key = s3_guard.parse_s3_uri(request.s3_uri, self._allowed_buckets)
        return self.check(
            s3_guard.read_s3_object(bucket, key, max_bytes=self.max_image_bytes, client=self._s3)
        )

    def from_binary(self, body: bytes, content_type: str) -> CheckedImage:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in BINARY_CONTENT_TYPES:
            raise UnsupportedMediaTypeError(
                f"content type {media_type or '(none)'} is not accepted; send application/json or one of "
                + ", ".join(sorted(BINARY_CONTENT_TYPES)),
                code="unsupported_content_type",
            )
        return self.check(body)

    def check(self, data: bytes) -> CheckedImage:
        """Size, format, pixel-count and integrity checks; the original bytes go to the endpoint."""
        load_image(data, max_bytes=self.max_image_bytes, min_size=CHECK_MIN_SIZE)
        return CheckedImage(data=data, content_type=endpoint_content_type(data))

    def _decode_base64(self, encoded: str) -> bytes:
        # Refuse before decoding: 4 base64 characters carry 3 bytes.
        if len(encoded) * 3 // 4 > self.max_image_bytes + 3:
            raise PayloadTooLargeError(
                f"the image is larger than {self.max_image_bytes} bytes", code="body_too_large"
            )
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise BadRequestError("image is not valid base64", code="invalid_base64") from error
        check_body_size(data, max_bytes=self.max_image_bytes, what="image")
        return data


def guarded_url_fetcher(*, max_bytes: int, timeout: float) -> UrlFetcher:
    """The production fetcher: HTTPS only, public addresses only (SSRF guard), byte cap, deadlines."""

    def fetch(url: str) -> bytes:
        return url_guard.fetch_url(
            url,
            max_bytes=max_bytes,
            connect_timeout=min(3.0, timeout),
            read_timeout=timeout,
            total_timeout=timeout * 2,
        )

    return fetch
