"""The SageMaker serving handler on a trained tiny model: image bytes only (the endpoint fetches nothing),
every bad input, and the PyTorch fallback when the container has no onnxruntime."""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import inference
import numpy as np
import pytest
from dogbreed_job import serving_input, serving_model, serving_output
from dogbreed_job.serving_model import ImageClassifier
from PIL import Image
from request_guards.errors import InputError

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_image
from tests.support.images import png_header_only


def image_bytes(class_index: int, fmt: str = "JPEG", size: int = 96) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid_color_image(class_index, size, seed=7)).save(buffer, fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> ImageClassifier:
    return inference.model_fn(str(tiny_model_dir))


def classify(model: ImageClassifier, body: Any, content_type: str, accept: str = "application/json") -> Any:
    request = inference.input_fn(body, content_type)
    content, response_type = inference.output_fn(inference.predict_fn(request, model), accept)
    assert response_type == "application/json"
    return json.loads(content)


def rejection(model: ImageClassifier, body: Any, content_type: str | None, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as caught:
        inference.parse_request(body, content_type, model.image_size, **kwargs)
    return caught.value


# ------------------------------------------------------------------------------------------ model


def test_model_fn_uses_onnx_runtime_when_the_export_exists(model: ImageClassifier) -> None:
    assert model.backend == "onnx"
    assert model.model_version == "tiny-test-1"
    assert model.classes == list(TINY_CLASSES)


def test_pytorch_fallback_gives_the_same_answer(
    tiny_model_dir: Path, tmp_path: Path, model: ImageClassifier
) -> None:
    weights_only = tmp_path / "model"
    shutil.copytree(tiny_model_dir, weights_only, ignore=shutil.ignore_patterns("model.onnx"))
    fallback = inference.model_fn(str(weights_only))
    assert fallback.backend == "pytorch"
    request = inference.input_fn(image_bytes(2), "image/jpeg")
    onnx_doc = inference.predict_fn(request, model)
    torch_doc = inference.predict_fn(request, fallback)
    assert onnx_doc["predictions"][0]["class_index"] == torch_doc["predictions"][0]["class_index"] == 2
    assert onnx_doc["predictions"][0]["probability"] == pytest.approx(
        torch_doc["predictions"][0]["probability"], abs=1e-4
    )


def test_without_onnxruntime_the_pytorch_weights_serve_and_a_log_line_says_so(
    tiny_model_dir: Path,
    model: ImageClassifier,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a model directory with model.onnx, in a container without onnxruntime (the PyTorch DLC)
    monkeypatch.setattr(serving_model, "onnxruntime_available", lambda: False)

    # When the model is loaded
    with caplog.at_level(logging.WARNING, logger=serving_model.logger.name):
        fallback = inference.model_fn(str(tiny_model_dir))

    # Then the PyTorch weights serve, say so in the log, and answer as the ONNX model does
    assert fallback.backend == serving_model.PYTORCH_BACKEND
    assert any("onnxruntime is not installed" in record.getMessage() for record in caplog.records)
    request = inference.input_fn(image_bytes(1), "image/jpeg")
    assert inference.predict_fn(request, fallback)["predictions"][0]["class_index"] == 1
    assert model.backend == serving_model.ONNX_BACKEND


def test_model_dir_without_weights_fails_clearly(tiny_model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "model"
    shutil.copytree(tiny_model_dir, empty, ignore=shutil.ignore_patterns("model.onnx", "model.pth"))
    with pytest.raises(FileNotFoundError, match=r"model\.pth"):
        inference.model_fn(str(empty))


# ------------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        ("image/jpeg", "JPEG"),
        ("image/png", "PNG"),
        ("application/x-image", "PNG"),
        ("image/jpeg; charset=binary", "JPEG"),
    ],
)
@pytest.mark.parametrize("class_index", [0, 1, 2])
def test_binary_images_are_classified(
    model: ImageClassifier, content_type: str, fmt: str, class_index: int
) -> None:
    document = classify(model, image_bytes(class_index, fmt), content_type)
    assert document["model_version"] == "tiny-test-1"
    best = document["predictions"][0]
    assert best == {
        "breed": TINY_CLASSES[class_index],
        "class_index": class_index,
        "probability": best["probability"],
    }


def test_probabilities_are_a_softmax_sorted_descending(model: ImageClassifier) -> None:
    request = inference.parse_request(
        image_bytes(1), "image/jpeg", model.image_size, custom_attributes="top_k=3"
    )
    document = inference.predict_fn(request, model)
    probabilities = [p["probability"] for p in document["predictions"]]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities)


@pytest.mark.parametrize(
    "body",
    [
        {"image": "<base64>"},
        {"url": "https://images.example/dog.jpg"},
        {"s3_uri": "s3://bucket/dog.jpg"},
        [{"image": "<base64>"}],
    ],
)
def test_json_bodies_are_415_the_endpoint_fetches_nothing(model: ImageClassifier, body: Any) -> None:
    if isinstance(body, dict) and "image" in body:
        body = {"image": b64(image_bytes(0))}
    error = rejection(model, json.dumps(body), "application/json")
    assert (error.status, error.code) == (415, "unsupported_content_type")
    assert error.to_dict() == {"error": {"code": "unsupported_content_type", "message": error.message}}


def test_batched_requests_match_single_requests(model: ImageClassifier) -> None:
    requests = [inference.parse_request(image_bytes(c), "image/jpeg", model.image_size) for c in range(3)]
    together = inference.predict_many(requests, model)
    alone = [inference.predict_many([r], model)[0] for r in requests]
    for a, b in zip(together, alone, strict=True):
        assert [p["class_index"] for p in a["predictions"]] == [p["class_index"] for p in b["predictions"]]
        for p, q in zip(a["predictions"], b["predictions"], strict=True):
            assert p["probability"] == pytest.approx(q["probability"], abs=1e-5)


# ------------------------------------------------------------------------------------------ top_k


def test_top_k_defaults_to_five_capped_at_the_class_count(model: ImageClassifier) -> None:
    assert len(classify(model, image_bytes(0), "image/jpeg")["predictions"]) == min(5, len(TINY_CLASSES))


def test_top_k_from_sagemaker_custom_attributes(model: ImageClassifier) -> None:
    request = inference.parse_request(
        image_bytes(0), "image/jpeg", model.image_size, custom_attributes="trace=1, top_k=2"
    )
    assert request.top_k == 2


def test_top_k_from_the_toolkit_context(model: ImageClassifier) -> None:
    class Context:
        def get_request_header(self, _index: int, name: str) -> str | None:
            return "top_k=1" if name == serving_input.CUSTOM_ATTRIBUTES_HEADER else None

    request = inference.input_fn(image_bytes(0), "image/jpeg", Context())
    assert isinstance(request, serving_input.PredictionRequest)
    assert request.top_k == 1


def test_top_k_defaults_to_the_environments(model: ImageClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    # A transform job has no custom attributes: its Environment sets the default
    monkeypatch.setenv(serving_input.TOP_K_ENV, "2")
    request = inference.parse_request(image_bytes(0), "image/jpeg", model.image_size)
    assert request.top_k == 2
    assert (
        inference.parse_request(
            image_bytes(0), "image/jpeg", model.image_size, custom_attributes="top_k=4"
        ).top_k
        == 4
    )


def test_json_lines_callers_get_one_line_per_answer_and_bad_inputs_as_rejection_lines(
    model: ImageClassifier,
) -> None:
    class Context:
        def get_request_header(self, _index: int, name: str) -> str | None:
            return "application/jsonlines" if name == "Accept" else None

    # Given Batch Transform's Accept header: a good image is one JSON line
    good = inference.predict_fn(inference.input_fn(image_bytes(1), "image/jpeg", Context()), model)
    body, content_type = inference.output_fn(good, "application/jsonlines")
    assert content_type == "application/jsonlines"
    assert body.endswith("\n") and body.count("\n") == 1
    assert json.loads(body)["predictions"][0]["breed"] == TINY_CLASSES[1]

    # And a file that is not an image is a 200 rejection line, not an error that would fail the job
    bad = inference.predict_fn(inference.input_fn(b"not an image", "image/jpeg", Context()), model)
    body, content_type = inference.output_fn(bad, "application/jsonlines")
    assert content_type == "application/jsonlines"
    assert json.loads(body)["rejected"]["code"] == "not_an_image"

    # While a JSON caller still gets the client error
    with pytest.raises(InputError):
        inference.input_fn(b"not an image", "image/jpeg", None)


# "²" passes str.isdigit() and 4,301 digits pass it too, but int() refuses both (found by fuzzing).
@pytest.mark.parametrize("attributes", ["top_k=0", "top_k=11", "top_k=abc", "top_k=²", "top_k=" + "9" * 4301])
def test_invalid_top_k_in_custom_attributes_is_422(model: ImageClassifier, attributes: str) -> None:
    error = rejection(model, image_bytes(0), "image/jpeg", custom_attributes=attributes)
    assert (error.status, error.code) == (422, "invalid_top_k")


# ----------------------------------------------------------------------------------------- accept


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "", "text/html, application/json;q=0.9", "application/*"]
)
def test_json_is_produced_for_compatible_accept_headers(model: ImageClassifier, accept: str) -> None:
    assert classify(model, image_bytes(0), "image/jpeg", accept)["predictions"]


@pytest.mark.parametrize("accept", ["text/csv", "image/png", "application/x-protobuf"])
def test_other_accept_headers_are_406(model: ImageClassifier, accept: str) -> None:
    prediction = inference.predict_fn(inference.input_fn(image_bytes(0), "image/jpeg"), model)
    with pytest.raises(InputError) as caught:
        inference.output_fn(prediction, accept)
    assert (caught.value.status, caught.value.code) == (406, "not_acceptable")


# ------------------------------------------------------------------------------------- bad inputs


def truncated_jpeg() -> bytes:
    data = image_bytes(0, size=200)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"", "image/jpeg", 400, "empty_body"),
        (b"x" * (6 * 1024 * 1024 + 1), "image/jpeg", 413, "body_too_large"),
        (b"not an image at all", "image/jpeg", 415, "not_an_image"),
        (b"not an image at all", "application/x-image", 415, "not_an_image"),
        (b"\x89PNG\r\n\x1a\n garbage", "image/png", 400, "corrupt_image"),
        (None, "image/jpeg", 400, "truncated_image"),
        (b"{}", "text/plain", 415, "unsupported_content_type"),
        (b"{}", None, 415, "unsupported_content_type"),
        (b"{}", "image/gif", 415, "unsupported_content_type"),
        (b"{not json", "application/json", 415, "unsupported_content_type"),
        # A large body of the wrong type is refused for its type, before its size is looked at.
        (b"x" * (6 * 1024 * 1024 + 1), "application/json", 415, "unsupported_content_type"),
    ],
)
def test_bad_inputs_get_clear_client_errors(
    model: ImageClassifier, body: bytes | None, content_type: str | None, status: int, code: str
) -> None:
    error = rejection(model, truncated_jpeg() if body is None else body, content_type)
    assert (error.status, error.code) == (status, code)
    assert error.to_dict() == {"error": {"code": code, "message": error.message}}


def test_decompression_bomb_is_413(model: ImageClassifier) -> None:
    error = rejection(model, png_header_only(30000, 30000), "image/png")
    assert (error.status, error.code) == (413, "image_too_large")


def test_a_good_request_after_bad_ones_still_succeeds(model: ImageClassifier) -> None:
    for body in (b"", b"junk", truncated_jpeg()):
        with pytest.raises(InputError):
            inference.input_fn(body, "image/jpeg")
    assert classify(model, image_bytes(1), "image/jpeg")["predictions"][0]["class_index"] == 1


def test_softmax_is_stable_for_large_logits() -> None:
    probabilities = serving_output.softmax(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))
    assert np.isfinite(probabilities).all()
    assert probabilities[0, 0] == pytest.approx(1.0)


def test_inside_the_sagemaker_toolkit_client_errors_keep_their_status(
    model: ImageClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    class ToolkitError(Exception):
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code, self.message, self.phrase = status_code, message, phrase

    errors_module = types.ModuleType("sagemaker_inference.errors")
    errors_module.GenericInferenceToolkitError = ToolkitError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sagemaker_inference", types.ModuleType("sagemaker_inference"))
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", errors_module)
    with pytest.raises(ToolkitError) as caught:
        inference.input_fn(b"junk", "image/jpeg")
    assert caught.value.status_code == 415
    assert json.loads(caught.value.message)["error"]["code"] == "not_an_image"
