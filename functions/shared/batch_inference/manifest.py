"""The manifest a user writes to `batches/<id>/manifest.json`, checked before anything runs:

    {"keys": ["incoming/a.jpg", "s3://<inference bucket>/photos/b.png"], "top_k": 3, "model": "deployed"}
    {"prefix": "photos/2026/", "model": "dogbreed-1a2b3c4d-261205064512-a1b"}

Exactly one of `keys` (object keys, or s3:// URIs in the inference bucket) and `prefix`; `top_k`
1..10 (default 5); `model` "deployed" (what the endpoint serves, the default) or a model version
(the SageMaker model the training pipeline named after it). Keys in another bucket, keys under
`batches/` (a batch's own outputs) and unknown fields are refused with a clear reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from batch_inference.layout import BATCHES_PREFIX

DEFAULT_TOP_K: Final = 5
MAX_TOP_K: Final = 10
DEPLOYED: Final = "deployed"
# SageMaker's model name pattern: a model version is the name of the model the pipeline created.
MODEL_NAME_PATTERN: Final = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
FIELDS: Final = frozenset({"keys", "prefix", "top_k", "model"})


class ManifestError(ValueError):
    """The manifest cannot start a batch: `code` is stable, the message says what to change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BatchManifest:
    keys: tuple[str, ...] | None
    prefix: str | None
    top_k: int
    model: str


def _in_bucket(value: Any, bucket: str, what: str) -> str:
    if not isinstance(value, str):
        raise ManifestError("invalid_manifest", f"{what} must be a string, not {json.dumps(value)[:80]}")
    key = value
    if value.startswith("s3://"):
        named, _, key = value[len("s3://") :].partition("/")
        if named != bucket:
            raise ManifestError(
                "outside_bucket",
                f"{value[:200]} is outside the inference bucket {bucket}: copy it there first",
            )
    elif "://" in value:
        raise ManifestError("outside_bucket", f"{value[:200]} is not a key of the inference bucket {bucket}")
    if key.startswith(BATCHES_PREFIX):
        raise ManifestError(
            "batch_output_as_input", f"{key[:200]} is under {BATCHES_PREFIX}, where batches write"
        )
    return key


def parse_manifest(document: Any, *, bucket: str) -> BatchManifest:
    """The manifest, checked; raises ManifestError."""
    if not isinstance(document, dict):
        raise ManifestError("invalid_manifest", "the manifest must be a JSON object")
    unknown = sorted(set(document) - FIELDS)
    if unknown:
        raise ManifestError("invalid_manifest", f"unknown fields {unknown}; the fields are {sorted(FIELDS)}")
    if ("keys" in document) == ("prefix" in document):
        raise ManifestError("invalid_manifest", "give exactly one of 'keys' (a list) and 'prefix'")
    keys: tuple[str, ...] | None = None
    prefix: str | None = None
    if "keys" in document:
        raw = document["keys"]
        if not isinstance(raw, list):
            raise ManifestError("invalid_manifest", "'keys' must be a list of object keys")
        if not raw:
            raise ManifestError("empty_manifest", "'keys' is empty: there is nothing to classify")
        checked = [_in_bucket(item, bucket, "each key") for item in raw]
        if any(not key or key.endswith("/") for key in checked):
            raise ManifestError(
                "invalid_manifest", "a key is empty or names a folder; use 'prefix' for folders"
            )
        keys = tuple(dict.fromkeys(checked))
    else:
        prefix = _in_bucket(document["prefix"], bucket, "'prefix'")
    top_k = document.get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise ManifestError("invalid_manifest", f"'top_k' must be an integer from 1 to {MAX_TOP_K}")
    model = document.get("model", DEPLOYED)
    if not isinstance(model, str) or not (model == DEPLOYED or MODEL_NAME_PATTERN.match(model)):
        raise ManifestError("invalid_manifest", f"'model' must be {DEPLOYED!r} or a model version")
    return BatchManifest(keys=keys, prefix=prefix, top_k=top_k, model=model)
