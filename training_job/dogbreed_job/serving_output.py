"""The serving handler's predictions and responses: one batch through the network for several
requests, and the response documents as JSON or JSON Lines.

Response (`Accept`: `application/json`, `application/*` or `*/*`; anything else is refused with 406):
`{"model_version": "...", "predictions": [{"breed", "class_index", "probability"}, ...]}`. With
`Accept: application/jsonlines` (Batch Transform) the same document is one JSON line, and a bad input
can be answered 200 with one line `{"rejected": {"code", "message"}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from request_guards.errors import InputError, NotAcceptableError

from dogbreed_job.serving_input import PredictionRequest, media_type
from dogbreed_job.serving_model import FloatArray, ImageClassifier

JSON_CONTENT_TYPE = "application/json"
JSON_LINES_CONTENT_TYPE = "application/jsonlines"
ACCEPTED_RESPONSE_TYPES = frozenset({"application/json", "application/*", "*/*"})


def softmax(logits: FloatArray) -> np.ndarray[Any, np.dtype[np.float64]]:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float64)


def top_predictions(
    probabilities: np.ndarray[Any, Any], classes: Sequence[str], k: int
) -> list[dict[str, Any]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [
        {"breed": classes[int(index)], "class_index": int(index), "probability": float(probabilities[index])}
        for index in order
    ]


def predict_many(requests: Sequence[PredictionRequest], model: ImageClassifier) -> list[dict[str, Any]]:
    """Run several requests' images as ONE batch through the network (dynamic batching) and build
    each request's response document, in request order."""
    if not requests:
        return []
    batch = requests[0].inputs if len(requests) == 1 else np.concatenate([r.inputs for r in requests])
    probabilities = softmax(model.logits(batch))
    return [
        {"model_version": model.model_version, "predictions": top_predictions(row, model.classes, r.top_k)}
        for row, r in zip(probabilities, requests, strict=True)
    ]


def check_accept(accept: str | None) -> str:
    """The response content type for an Accept header; raises NotAcceptableError (406)."""
    if not accept or not accept.strip():
        return JSON_CONTENT_TYPE
    for media_range in accept.split(","):
        kind = media_type(media_range)
        if kind == JSON_LINES_CONTENT_TYPE:
            return JSON_LINES_CONTENT_TYPE
        if kind in ACCEPTED_RESPONSE_TYPES:
            return JSON_CONTENT_TYPE
    raise NotAcceptableError(
        f"cannot produce {accept!r}; accept application/json or application/jsonlines", code="not_acceptable"
    )


def render(document: Mapping[str, Any], accept: str | None) -> tuple[str, str]:
    """(body, content type) for a response document: JSON, or one JSON line."""
    content_type = check_accept(accept)
    body = json.dumps(document, separators=(",", ":"))
    return (body + "\n" if content_type == JSON_LINES_CONTENT_TYPE else body), content_type


def render_rejection(error: InputError, accept: str | None) -> tuple[str, str] | None:
    """A bad input as a 200 JSON line `{"rejected": {"code", "message"}}` when the caller reads JSON
    Lines (Batch Transform); None when it gets the error's 4xx instead."""
    try:
        if check_accept(accept) != JSON_LINES_CONTENT_TYPE:
            return None
    except InputError:
        return None
    return render({"rejected": error.to_dict()["error"]}, accept)
