"""The SageMaker serving handler on a trained tiny model: every content type, every bad input."""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import inference
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image
from request_guards import s3_guard
from request_guards.errors import InputError

from tests.conftest import TINY_CLASSES, solid_color_image


def image_bytes(class_index: int, fmt: str = "JPEG", size: int = 96) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid_color_image(class_index, size, seed=7)).save(buffer, fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> inference.ImageClassifier:
    return inference.model_fn(str(tiny_model_dir))


def classify(
    model: inference.ImageClassifier, body: Any, content_type: str, accept: str = "application/json"
) -> Any:
    request = inference.input_fn(body, content_type)
    content, response_type = inference.output_fn(inference.predict_fn(request, model), accept)
    assert response_type == "application/json"
    return json.loads(content)


def rejection(
    model: inference.ImageClassifier, body: Any, content_type: str | None, **kwargs: Any
) -> InputError:
    with pytest.raises(InputError) as caught:
        inference.parse_request(body, content_type, model.image_size, **kwargs)
    return caught.value


# ------------------------------------------------------------------------------------------ model


def test_model_fn_uses_onnx_runtime_when_the_export_exists(model: inference.ImageClassifier) -> None:
    assert model.backend == "onnx"
    assert model.model_version == "tiny-test-1"
    assert model.classes == list(TINY_CLASSES)


def test_pytorch_fallback_gives_the_same_answer(
    tiny_model_dir: Path, tmp_path: Path, model: inference.ImageClassifier
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
    model: inference.ImageClassifier, content_type: str, fmt: str, class_index: int
) -> None:
    document = classify(model, image_bytes(class_index, fmt), content_type)
    assert document["model_version"] == "tiny-test-1"
    best = document["predictions"][0]
    assert best == {
        "breed": TINY_CLASSES[class_index],
        "class_index": class_index,
        "probability": best["probability"],
    }


def test_probabilities_are_a_softmax_sorted_descending(model: inference.ImageClassifier) -> None:
    document = classify(model, json.dumps({"image": b64(image_bytes(1)), "top_k": 3}), "application/json")
    probabilities = [p["probability"] for p in document["predictions"]]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_json_base64_image(model: inference.ImageClassifier) -> None:
    document = classify(model, json.dumps({"image": b64(image_bytes(0))}), "application/json")
    assert document["predictions"][0]["class_index"] == 0


def test_json_base64_data_url(model: inference.ImageClassifier) -> None:
    body = json.dumps({"image": "data:image/png;base64," + b64(image_bytes(2, "PNG"))})
    assert classify(model, body, "application/json")["predictions"][0]["class_index"] == 2


def test_json_url_goes_through_the_url_guard(
    model: inference.ImageClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[tuple[str, dict[str, Any]]] = []

    def fake_fetch(url: str, **kwargs: Any) -> bytes:
        fetched.append((url, kwargs))
        return image_bytes(1)

    monkeypatch.setattr(inference.url_guard, "fetch_url", fake_fetch)
    document = classify(model, json.dumps({"url": "https://images.example/dog.jpg"}), "application/json")
    assert document["predictions"][0]["class_index"] == 1
    assert fetched[0][0] == "https://images.example/dog.jpg"
    assert fetched[0][1]["allow_http"] is False
    assert fetched[0][1]["max_bytes"] == 6 * 1024 * 1024


def test_json_url_to_a_forbidden_address_is_refused(model: inference.ImageClassifier) -> None:
    error = rejection(
        model, json.dumps({"url": "https://169.254.169.254/latest/meta-data/"}), "application/json"
    )
    assert (error.status, error.code) == (422, "url_forbidden_address")


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(s3_guard.ALLOWED_BUCKETS_ENV, "allowed-images")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="allowed-images")
        client.create_bucket(Bucket="private-data")
        yield client


def test_json_s3_uri_from_an_allowed_bucket(model: inference.ImageClassifier, s3_bucket: Any) -> None:
    s3_bucket.put_object(Bucket="allowed-images", Key="incoming/dog.png", Body=image_bytes(2, "PNG"))
    document = classify(
        model, json.dumps({"s3_uri": "s3://allowed-images/incoming/dog.png"}), "application/json"
    )
    assert document["predictions"][0]["class_index"] == 2


def test_json_s3_uri_from_another_bucket_is_refused(model: inference.ImageClassifier, s3_bucket: Any) -> None:
    s3_bucket.put_object(Bucket="private-data", Key="dog.png", Body=image_bytes(2, "PNG"))
    error = rejection(model, json.dumps({"s3_uri": "s3://private-data/dog.png"}), "application/json")
    assert (error.status, error.code) == (422, "s3_bucket_not_allowed")


def test_json_list_is_a_batch_in_request_order(model: inference.ImageClassifier) -> None:
    items = [{"image": b64(image_bytes(c)), "top_k": 2} for c in (2, 0, 1)]
    document = classify(model, json.dumps(items), "application/json")
    assert set(document) == {"model_version", "results"}
    assert [r["predictions"][0]["class_index"] for r in document["results"]] == [2, 0, 1]
    assert all(len(r["predictions"]) == 2 for r in document["results"])


def test_batched_requests_match_single_requests(model: inference.ImageClassifier) -> None:
    requests = [inference.parse_request(image_bytes(c), "image/jpeg", model.image_size) for c in range(3)]
    together = inference.predict_many(requests, model)
    alone = [inference.predict_many([r], model)[0] for r in requests]
    for a, b in zip(together, alone, strict=True):
        assert [p["class_index"] for p in a["predictions"]] == [p["class_index"] for p in b["predictions"]]
        for p, q in zip(a["predictions"], b["predictions"], strict=True):
            assert p["probability"] == pytest.approx(q["probability"], abs=1e-5)


# ------------------------------------------------------------------------------------------ top_k


def test_top_k_defaults_to_five_capped_at_the_class_count(model: inference.ImageClassifier) -> None:
    assert len(classify(model, image_bytes(0), "image/jpeg")["predictions"]) == min(5, len(TINY_CLASSES))


def test_top_k_from_json(model: inference.ImageClassifier) -> None:
    body = json.dumps({"image": b64(image_bytes(0)), "top_k": 1})
    assert len(classify(model, body, "application/json")["predictions"]) == 1


def test_top_k_from_sagemaker_custom_attributes(model: inference.ImageClassifier) -> None:
    request = inference.parse_request(
        image_bytes(0), "image/jpeg", model.image_size, custom_attributes="trace=1, top_k=2"
    )
    assert request.top_ks == (2,)


def test_top_k_from_the_toolkit_context(model: inference.ImageClassifier) -> None:
    class Context:
        def get_request_header(self, _index: int, name: str) -> str | None:
            return "top_k=1" if name == inference.CUSTOM_ATTRIBUTES_HEADER else None

    request = inference.input_fn(image_bytes(0), "image/jpeg", Context())
    assert request.top_ks == (1,)


@pytest.mark.parametrize("top_k", [0, 11, -1, "3", 2.5, True, None])
def test_invalid_top_k_in_json_is_422(model: inference.ImageClassifier, top_k: Any) -> None:
    error = rejection(model, json.dumps({"image": b64(image_bytes(0)), "top_k": top_k}), "application/json")
    assert (error.status, error.code) == (422, "invalid_top_k")


# "²" passes str.isdigit() and 4,301 digits pass it too, but int() refuses both (found by fuzzing).
@pytest.mark.parametrize("attributes", ["top_k=0", "top_k=11", "top_k=abc", "top_k=²", "top_k=" + "9" * 4301])
def test_invalid_top_k_in_custom_attributes_is_422(model: inference.ImageClassifier, attributes: str) -> None:
    error = rejection(model, image_bytes(0), "image/jpeg", custom_attributes=attributes)
    assert (error.status, error.code) == (422, "invalid_top_k")


# Both were 500s before (found by fuzzing): a number past int()'s 4,300-digit limit, and a str body with
# a lone surrogate (no UTF-8 form).
@pytest.mark.parametrize("body", ['{"top_k": ' + "9" * 4301 + "}", '{"url": "\ud800"}'])
def test_json_the_parser_cannot_read_is_400(body: str) -> None:
    with pytest.raises(InputError) as caught:
        inference.read_request(body, "application/json")
    assert (caught.value.status, caught.value.code) == (400, "invalid_json")


def test_unknown_field_names_are_escaped_in_the_message() -> None:
    # A lone surrogate as a field name made the message unsendable as UTF-8 (found by fuzzing).
    with pytest.raises(InputError) as caught:
        inference.read_request(b'{"image": "AAAA", "\\ud800": 1}', "application/json")
    assert (caught.value.status, caught.value.code) == (422, "unknown_field")
    assert caught.value.message.encode("utf-8") == b"unknown field(s): \\ud800"


def test_unknown_field_names_are_capped_in_the_message() -> None:
    # A body of 100,000 unknown fields must not come back as a 1 MB message.
    body = json.dumps({"image": "AAAA", **{f"extra{i}": i for i in range(10)}})
    with pytest.raises(InputError) as caught:
        inference.read_request(body, "application/json")
    assert caught.value.message == "unknown field(s): extra0, extra1, extra2, extra3, extra4 and 5 more"


# ----------------------------------------------------------------------------------------- accept


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "", "text/html, application/json;q=0.9", "application/*"]
)
def test_json_is_produced_for_compatible_accept_headers(
    model: inference.ImageClassifier, accept: str
) -> None:
    assert classify(model, image_bytes(0), "image/jpeg", accept)["predictions"]


@pytest.mark.parametrize("accept", ["text/csv", "image/png", "application/x-protobuf"])
def test_other_accept_headers_are_406(model: inference.ImageClassifier, accept: str) -> None:
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
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (b'"a string"', "application/json", 422, "invalid_request"),
        (b"{}", "application/json", 422, "invalid_request"),
        (b'{"url": "https://a.example/x.jpg", "image": "AAAA"}', "application/json", 422, "invalid_request"),
        (b'{"image": "AAAA", "extra": 1}', "application/json", 422, "unknown_field"),
        (b'{"image": "not base64!!"}', "application/json", 400, "invalid_base64"),
        (b'{"image": ""}', "application/json", 400, "invalid_base64"),
        (b'{"image": 5}', "application/json", 400, "invalid_base64"),
        (b'{"image": "aGVsbG8="}', "application/json", 415, "not_an_image"),
        (b'{"url": 5}', "application/json", 400, "invalid_url"),
        (b'{"url": "http://images.example/dog.jpg"}', "application/json", 422, "url_scheme_not_allowed"),
        (b'{"url": "https://127.1/dog.jpg"}', "application/json", 422, "url_ambiguous_host"),
        (b'{"s3_uri": "https://bucket/key"}', "application/json", 400, "invalid_s3_uri"),
        (b'{"s3_uri": "s3://not-allowed-bucket/key"}', "application/json", 422, "s3_bucket_not_allowed"),
        (b"[]", "application/json", 422, "empty_batch"),
        (b"[1, 2]", "application/json", 422, "invalid_request"),
        (json.dumps([{"image": "AAAA"}] * 17).encode(), "application/json", 422, "batch_too_large"),
    ],
)
def test_bad_inputs_get_clear_client_errors(
    model: inference.ImageClassifier, body: bytes | None, content_type: str | None, status: int, code: str
) -> None:
    error = rejection(model, truncated_jpeg() if body is None else body, content_type)
    assert (error.status, error.code) == (status, code)
    assert error.to_dict() == {"error": {"code": code, "message": error.message}}


def test_one_bad_item_rejects_the_whole_batch(model: inference.ImageClassifier) -> None:
    body = json.dumps([{"image": b64(image_bytes(0))}, {"image": b64(b"junk")}])
    assert rejection(model, body, "application/json").code == "not_an_image"


def test_decompression_bomb_is_413(model: inference.ImageClassifier) -> None:
    from tests.unit.test_request_guards_image import png_header_only

    error = rejection(model, png_header_only(30000, 30000), "image/png")
    assert (error.status, error.code) == (413, "image_too_large")


def test_a_good_request_after_bad_ones_still_succeeds(model: inference.ImageClassifier) -> None:
    for body in (b"", b"junk", truncated_jpeg()):
        with pytest.raises(InputError):
            inference.input_fn(body, "image/jpeg")
    assert classify(model, image_bytes(1), "image/jpeg")["predictions"][0]["class_index"] == 1


def test_softmax_is_stable_for_large_logits() -> None:
    probabilities = inference.softmax(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))
    assert np.isfinite(probabilities).all()
    assert probabilities[0, 0] == pytest.approx(1.0)


def test_inside_the_sagemaker_toolkit_client_errors_keep_their_status(
    model: inference.ImageClassifier, monkeypatch: pytest.MonkeyPatch
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
