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
Thread counts come from DOGBREED_INFERENCE_THREADS (default: all cores; the local server divides
the cores between its workers).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dogbreed_job import artifacts, transforms
from request_guards import image_guard
from request_guards.errors import (
    InputError,
    NotAcceptableError,
    UnsupportedMediaTypeError,
    ValidationError,
)

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"
JSON_LINES_CONTENT_TYPE = "application/jsonlines"
IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "application/x-image"})
ACCEPTED_RESPONSE_TYPES = frozenset({"application/json", "application/*", "*/*"})
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
DEFAULT_TOP_K = 5
MAX_TOP_K = 10

THREADS_ENV = "DOGBREED_INFERENCE_THREADS"
TOP_K_ENV = "DOGBREED_TOP_K"  # the default top_k (a transform job's Environment sets it)
ONNX_FILE_ENV = "DOGBREED_ONNX_FILE"  # e.g. model.int8.onnx for the quantized variant
SPIN_ENV = "DOGBREED_ORT_SPIN"  # 1: let idle ONNX Runtime threads spin (lower latency on idle cores)
MAX_BYTES = image_guard.DEFAULT_MAX_BYTES
MAX_PIXELS = image_guard.DEFAULT_MAX_PIXELS

ONNX_BACKEND = "onnx"
PYTORCH_BACKEND = "pytorch"

FloatArray = np.ndarray[Any, np.dtype[np.float32]]


# --------------------------------------------------------------------------------------------- model


@dataclass
class ImageClassifier:
    """A loaded model: `logits(batch)` maps an NCHW float32 batch to (N, num_classes) logits."""

    config: artifacts.ModelConfig
    classes: list[str]
    backend: str  # ONNX_BACKEND or PYTORCH_BACKEND
    logits: Callable[[FloatArray], FloatArray]

    @property
    def model_version(self) -> str:
        return self.config.model_version

    @property
    def image_size(self) -> int:
        return self.config.image_size


def inference_threads() -> int:
    raw = os.environ.get(THREADS_ENV, "")
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, os.cpu_count() or 1)


def _onnx_logits(path: Path, threads: int) -> Callable[[FloatArray], FloatArray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # one graph at a time per worker; parallelism is inside ops
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads sleep instead of spinning: the cores are shared with image decoding.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if _env_flag(SPIN_ENV) else "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def run(batch: FloatArray) -> FloatArray:
        (out,) = session.run([output_name], {input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(out, dtype=np.float32)

    return run


def _pytorch_logits(
    model_dir: Path, config: artifacts.ModelConfig, threads: int
) -> Callable[[FloatArray], FloatArray]:
    import torch  # only for the fallback: the ONNX path never imports torch
    from dogbreed_job.model import build_model, load_weights

    torch.set_num_threads(threads)
    network = build_model(config.backbone, config.num_classes, pretrained=False)
    state = torch.load(model_dir / artifacts.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    load_weights(network, state).eval()

    def run(batch: FloatArray) -> FloatArray:
        with torch.inference_mode():
            out = network(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return np.asarray(out.numpy(), dtype=np.float32)

    return run


def onnxruntime_available() -> bool:
    """Whether onnxruntime imports here (also False when it is installed but cannot load)."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


def load_model(model_dir: str | Path, *, prefer_onnx: bool = True) -> ImageClassifier:
    """Load config, classes and the network from a model directory (no network access)."""
    directory = Path(model_dir)
    config = artifacts.ModelConfig.load(directory)
    classes = artifacts.load_classes(directory)
    if len(classes) != config.num_classes:
        raise ValueError(
            f"{artifacts.CLASSES_FILE} has {len(classes)} names for {config.num_classes} classes"
        )
    threads = inference_threads()
    onnx_path = directory / os.environ.get(ONNX_FILE_ENV, artifacts.ONNX_FILE)
    weights_path = directory / artifacts.WEIGHTS_FILE
    use_onnx = prefer_onnx and onnx_path.is_file()
    if use_onnx and not onnxruntime_available():
        if not weights_path.is_file():
            raise RuntimeError(
                f"onnxruntime is not installed and {directory} has no {artifacts.WEIGHTS_FILE} either"
            )
        # The SageMaker PyTorch image has torch but not onnxruntime, and nothing is installed at start.
        logger.warning(
            "onnxruntime is not installed in this container: serving %s with PyTorch instead of %s",
            artifacts.WEIGHTS_FILE,
            onnx_path.name,
        )
        use_onnx = False
    if use_onnx:
        backend, logits = ONNX_BACKEND, _onnx_logits(onnx_path, threads)
    elif weights_path.is_file():
        backend, logits = PYTORCH_BACKEND, _pytorch_logits(directory, config, threads)
    else:
        raise FileNotFoundError(f"{directory} has neither {onnx_path.name} nor {artifacts.WEIGHTS_FILE}")
    logger.info(
        "loaded model %s (%s, %s backend, %d threads)",
        config.model_version,
        config.backbone,
        backend,
        threads,
    )
    return ImageClassifier(config=config, classes=classes, backend=backend, logits=logits)


# ------------------------------------------------------------------------------------------ requests


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


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


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


# ---------------------------------------------------------------------------------------- prediction


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


# ----------------------------------------------------------------------- SageMaker handler functions


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
