"""The serving handler's requests: validate (content type, size, top_k), then decode and preprocess.

Requests carry image bytes only (`Content-Type` `image/jpeg`, `image/png` or `application/x-image`);
anything else, JSON included, is 415 `unsupported_content_type`. top_k comes from
`X-Amzn-SageMaker-Custom-Attributes: top_k=3` (default 5, or `DOGBREED_TOP_K`; maximum 10). Bad
input raises `request_guards.errors.InputError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from request_guards import image_guard
from request_guards.errors import UnsupportedMediaTypeError, ValidationError

from dogbreed_job import transforms
from dogbreed_job.serving_model import FloatArray

IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "application/x-image"})
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
DEFAULT_TOP_K = 5
MAX_TOP_K = 10
TOP_K_ENV = "DOGBREED_TOP_K"  # the default top_k (a transform job's Environment sets it)
MAX_BYTES = image_guard.DEFAULT_MAX_BYTES
MAX_PIXELS = image_guard.DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class PredictionRequest:
    """One preprocessed image (1, 3, S, S) and the top_k asked for."""

    inputs: FloatArray
    top_k: int


def media_type(content_type: str | None) -> str:
    """`image/JPEG; charset=x` -> `image/jpeg`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def validate_top_k(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise ValidationError(f"top_k must be an integer from 1 to {MAX_TOP_K}", code="invalid_top_k")
    return value


def top_k_from_custom_attributes(attributes: str | None) -> int | None:
    """`top_k=3` (optionally among other `key=value` pairs separated by `,` or `;`)."""
    if not attributes:
        return None
    for pair in attributes.replace(";", ",").split(","):
        key, _, value = pair.partition("=")
        if key.strip().lower() == "top_k":
            text = value.strip()
            # A few ASCII digits: str.isdigit() also accepts "²" and 4,301 digits, which int() refuses.
            if not (text.isascii() and text.isdigit()) or len(text) > 3:
                raise ValidationError(f"top_k must be an integer from 1 to {MAX_TOP_K}", code="invalid_top_k")
            return validate_top_k(int(text))
    return None


def default_top_k() -> int:
    """DOGBREED_TOP_K when it is set (a transform job's Environment), else DEFAULT_TOP_K."""
    raw = os.environ.get(TOP_K_ENV, "").strip()
    if not raw:
        return DEFAULT_TOP_K
    return top_k_from_custom_attributes(f"top_k={raw}") or DEFAULT_TOP_K


def preprocess_image(data: bytes, image_size: int) -> FloatArray:
    """Guarded decode (reduced-scale JPEG decode when large) + the training evaluation preprocessing."""
    image = image_guard.load_image(
        data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, min_size=transforms.resize_size(image_size)
    )
    return transforms.preprocess(image, image_size)


@dataclass(frozen=True)
class RawRequest:
    """A validated request whose image is not yet decoded (the I/O stage)."""

    image: bytes
    top_k: int


def read_request(
    body: bytes | bytearray | str, content_type: str | None, *, custom_attributes: str | None = None
) -> RawRequest:
    """Validate a request's content type, size and top_k: the I/O stage. Raises InputError."""
    # Lone surrogates pass as bytes that the image parser refuses, like any other bad byte.
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    kind = media_type(content_type)
    if kind not in IMAGE_CONTENT_TYPES:
        raise UnsupportedMediaTypeError(
            f"content type {kind or '(none)'!r} is not supported; send the image bytes as image/jpeg, "
            "image/png or application/x-image (URLs, S3 objects and base64 go through the prediction API)",
            code="unsupported_content_type",
        )
    image_guard.check_body_size(data, max_bytes=MAX_BYTES)
    top_k = top_k_from_custom_attributes(custom_attributes) or default_top_k()
    return RawRequest(data, top_k)


def preprocess_request(raw: RawRequest, image_size: int) -> PredictionRequest:
    """Decode and preprocess the image: the CPU stage. Raises InputError for bad images."""
    return PredictionRequest(preprocess_image(raw.image, image_size)[np.newaxis], raw.top_k)


def parse_request(
    body: bytes | bytearray | str,
    content_type: str | None,
    image_size: int,
    *,
    custom_attributes: str | None = None,
) -> PredictionRequest:
    """Validate, decode and preprocess one request. Raises InputError for any bad input."""
    raw = read_request(body, content_type, custom_attributes=custom_attributes)
    return preprocess_request(raw, image_size)
