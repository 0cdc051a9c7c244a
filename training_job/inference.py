"""The SageMaker serving contract for the dog-breed classifier (shipped as `code/inference.py`).

SageMaker's PyTorch serving container calls `model_fn(model_dir)` once per worker, then for every
request `input_fn(body, content_type)`, `predict_fn(data, model)` and `output_fn(prediction, accept)`.
The local model server (`dogbreed serve`) runs the same file through `read_request` (validate),
`preprocess_request` (decode), `predict_many` (one batch for several requests) and `render`, which
raise `request_guards.errors.InputError` for bad input.

Requests carry image bytes only (`Content-Type` `image/jpeg`, `image/png` or `application/x-image`);
anything else, JSON included, is 415 `unsupported_content_type`. The endpoint fetches nothing: URLs,
S3 objects and base64 are resolved by the Lambda functions' domain layer, and the model runs with
network isolation. top_k: `X-Amzn-SageMaker-Custom-Attributes: top_k=3` (default 5, maximum 10).

Response (`Accept`: `application/json` or `*/*`; anything else is refused with 406):
`{"model_version": "...", "predictions": [{"breed", "class_index", "probability"}, ...]}`.

Batch Transform asks for `Accept: application/jsonlines`: the same document as one JSON line, and a
bad input answered 200 with one line `{"rejected": {"code", "message"}}` instead of a 4xx, because
SageMaker marks a transform job Failed when any one input fails; one undecodable photo must not
fail an archive. A transform job has no custom attributes: its `Environment` sets the default top_k
(`DOGBREED_TOP_K`, 1..10).

The model is the ONNX Runtime session over `model.onnx` when onnxruntime is importable, else the
PyTorch weights in `model.pth` on the container's own torch (the SageMaker PyTorch image has torch,
not onnxruntime; nothing is pip-installed at start, see docs/serving.md). Nothing is ever downloaded.

This file holds the entry points; the work is in `dogbreed_job` (shipped with it under `code/`):
`serving_model` loads the model, `serving_input` validates and decodes requests, `serving_output`
runs batches and renders responses.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dogbreed_job import artifacts, transforms
from dogbreed_job.serving_input import (
    CUSTOM_ATTRIBUTES_HEADER,
    MAX_BYTES,
    PredictionRequest,
    parse_request,
    preprocess_request,
    read_request,
)
from dogbreed_job.serving_model import ImageClassifier, load_model
from dogbreed_job.serving_output import check_accept, predict_many, render, render_rejection
from request_guards.errors import InputError

# What this module offers its callers: SageMaker's four functions, and for the local model server
# (`dogbreed serve`, which looks them up on this module: dogbreed.serving.handler) the staged and
# batched request path, the body size limit and the client-error base class.
__all__ = [
    "MAX_BYTES",
    "InputError",
    "check_accept",
    "input_fn",
    "model_fn",
    "output_fn",
    "parse_request",
    "predict_fn",
    "predict_many",
    "preprocess_request",
    "read_request",
    "render",
    "render_rejection",
]


def _for_container(error: InputError) -> Exception:
    """Inside SageMaker's serving toolkit, only its own error type carries a 4xx status to the client."""
    try:
        toolkit_errors = importlib.import_module("sagemaker_inference.errors")
    except ImportError:
        return error
    toolkit_error = getattr(toolkit_errors, "GenericInferenceToolkitError", None)
    if toolkit_error is None:  # an older toolkit: the error goes out as a 500 with its message
        return error
    # (status code, message, phrase): the client gets the 4xx status and the JSON error body.
    body = json.dumps(error.to_dict())
    converted: Exception = toolkit_error(error.status, body, body)
    return converted


def _request_header(context: Any, name: str) -> str | None:
    """A request header from the toolkit's context object (None when there is no context)."""
    getter = getattr(context, "get_request_header", None)
    if getter is None:
        return None
    try:
        value = getter(0, name) or getter(0, name.lower())
    except (KeyError, IndexError, AttributeError, TypeError):
        return None
    return value.decode() if isinstance(value, bytes) else value


def model_fn(model_dir: str) -> ImageClassifier:
    model = load_model(model_dir)
    _IMAGE_SIZE["size"] = model.image_size
    return model


@dataclass(frozen=True)
class Rejection:
    """A bad input of a JSON Lines caller: passed through predict_fn, rendered by output_fn."""

    error: InputError


def input_fn(
    request_body: Any, request_content_type: str, context: Any = None
) -> PredictionRequest | Rejection:
    # `context` is passed by the toolkit when the function takes three parameters; it carries the
    # request headers (for top_k on binary bodies, and Accept). The toolkit does not hand the model
    # to input_fn: the image size is the one model_fn loaded in this worker.
    try:
        return parse_request(
            request_body,
            request_content_type,
            _container_image_size(),
            custom_attributes=_request_header(context, CUSTOM_ATTRIBUTES_HEADER),
        )
    except InputError as error:
        if render_rejection(error, _request_header(context, "Accept")) is not None:
            return Rejection(error)
        raise _for_container(error) from error


def predict_fn(input_data: PredictionRequest | Rejection, model: ImageClassifier) -> Any:
    if isinstance(input_data, Rejection):
        return input_data
    return predict_many([input_data], model)[0]


def output_fn(prediction: Any, accept: str) -> tuple[str, str]:
    try:
        if isinstance(prediction, Rejection):
            rendered = render_rejection(prediction.error, accept)
            if rendered is None:
                raise prediction.error
            return rendered
        return render(prediction, accept)
    except InputError as error:
        raise _for_container(error) from error


_IMAGE_SIZE: dict[str, int] = {}


def _container_image_size() -> int:
    """Image size of the model this worker loaded (else the config in SM_MODEL_DIR, /opt/ml/model)."""
    if "size" not in _IMAGE_SIZE:
        model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
        try:
            _IMAGE_SIZE["size"] = artifacts.ModelConfig.load(model_dir).image_size
        except (OSError, ValueError, KeyError):
            _IMAGE_SIZE["size"] = transforms.DEFAULT_IMAGE_SIZE
    return _IMAGE_SIZE["size"]
