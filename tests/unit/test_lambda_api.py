"""predict_api: every route and body kind, every error status, CORS, the legacy direct invoke, and no
internal detail (ARN, account id, traceback, Lambda context) in any response."""

from __future__ import annotations

import base64
import copy
import http.server
import ipaddress
import json
import threading
from typing import Any

import pytest
from request_guards.errors import InputError

from tests.support.lambda_world import (
    ACCOUNT_ID,
    BUCKET,
    LABRADOR_URL,
    MAX_IMAGE_BYTES,
    FakeLambdaContext,
    LambdaWorld,
    handler_module,
    jpeg_bytes,
    load_event,
    png_bytes,
)

app = handler_module("predict_api")


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = app.lambda_handler(event, FakeLambdaContext())
    return response


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def post_event(
    body: bytes | str | None,
    content_type: str | None = "application/json",
    *,
    binary: bool = False,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api_post_predictions_url.json"))
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if isinstance(body, bytes) and binary:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"] = body.decode() if isinstance(body, bytes) else body
        event["isBase64Encoded"] = False
    return event


def assert_error(response: dict[str, Any], status: int, code: str | None = None) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    error = body_of(response)["error"]
    assert set(error) == {"code", "message"}
    if code is not None:
        assert error["code"] == code
    assert_no_internals(response)
    return dict(error)


def assert_no_internals(response: dict[str, Any]) -> None:
    text = json.dumps(response)
    for secret in ("arn:aws", ACCOUNT_ID, "Traceback", "LambdaContext", "dogbreed-endpoint", 'File "'):
        assert secret not in text


# --- routes and body kinds ---------------------------------------------------------------------


def test_post_url_event_creates_a_stored_prediction(world: LambdaWorld) -> None:
    response = invoke(load_event("api_post_predictions_url.json"))

    assert response["statusCode"] == 201
    record = body_of(response)
    assert set(record) >= {"prediction_id", "model_version", "predictions", "created_at"}
    assert record["model_version"] == "fake-1"
    assert len(record["predictions"]) == 3  # the default top_k
    assert world.keys("results/api/") == [f"results/api/{record['prediction_id']}.json"]
    [item] = world.prediction_items()
    assert item.record.prediction_id == record["prediction_id"]
    assert item.input_kind == "url"
    assert item.expires_at > 0


def test_post_base64_image_event_honours_top_k_query(world: LambdaWorld) -> None:
    response = invoke(load_event("api_post_predictions_image_base64.json"))

    assert response["statusCode"] == 201
    assert len(body_of(response)["predictions"]) == 2
    assert world.endpoint.requests == [("image/jpeg", 2)]


def test_post_s3_uri_event_reads_the_allowed_bucket(world: LambdaWorld) -> None:
    world.put_object("uploads/beagle.jpg", jpeg_bytes((10, 200, 30)))

    response = invoke(load_event("api_post_predictions_s3_uri.json"))

    assert response["statusCode"] == 201
    assert len(body_of(response)["predictions"]) == 5  # top_k from the JSON body


@pytest.mark.parametrize(
    ("event_name", "content_type", "top_k"),
    [
        ("api_post_predictions_binary_jpeg.json", "image/jpeg", 3),
        ("api_post_predictions_binary_png.json", "image/png", 3),
    ],
)
def test_post_binary_body_events(world: LambdaWorld, event_name: str, content_type: str, top_k: int) -> None:
    response = invoke(load_event(event_name))

    assert response["statusCode"] == 201
    assert world.endpoint.requests == [(content_type, top_k)]


@pytest.mark.parametrize("content_type", ["application/x-image", "application/octet-stream"])
def test_post_other_binary_media_types(world: LambdaWorld, content_type: str) -> None:
    response = invoke(post_event(jpeg_bytes(), content_type, binary=True, query={"top_k": "1"}))

    assert response["statusCode"] == 201
    assert len(body_of(response)["predictions"]) == 1


def test_get_prediction_returns_the_stored_record(world: LambdaWorld) -> None:
    created = body_of(invoke(load_event("api_post_predictions_url.json")))
    event = load_event("api_get_prediction.json")
    event["path"] = f"/predictions/{created['prediction_id']}"
    event["pathParameters"] = {"prediction_id": created["prediction_id"]}

    response = invoke(event)

    assert response["statusCode"] == 200
    assert body_of(response) == created


def test_get_prediction_event_for_unknown_id_is_404(world: LambdaWorld) -> None:
    assert_error(invoke(load_event("api_get_prediction.json")), 404, "not_found")


def test_health_event(world: LambdaWorld) -> None:
    response = invoke(load_event("api_get_health.json"))

    assert response["statusCode"] == 200
    assert body_of(response)["status"] == "ok"


def test_openapi_event_serves_the_generated_document(world: LambdaWorld) -> None:
    response = invoke(load_event("api_get_openapi.json"))

    assert response["statusCode"] == 200
    document = body_of(response)
    post = document["paths"]["/predictions"]["post"]
    assert {"application/json", "image/jpeg", "image/png"} <= set(post["requestBody"]["content"])
    assert {"201", "400", "413", "415", "422", "502", "503", "504"} <= set(post["responses"])
    assert "/predictions/{prediction_id}" in document["paths"]
    assert "/health" in document["paths"]
    assert "/openapi.json" not in document["paths"]


def test_cors_headers_use_the_configured_origin(world: LambdaWorld) -> None:
    event = load_event("api_get_health.json")
    event["headers"]["Origin"] = "https://app.example.com"
    event["multiValueHeaders"]["Origin"] = ["https://app.example.com"]

    response = invoke(event)

    headers = response.get("multiValueHeaders") or {}
    assert headers.get("Access-Control-Allow-Origin") == ["https://app.example.com"]


def test_unknown_route_is_a_json_404(world: LambdaWorld) -> None:
    event = load_event("api_get_health.json")
    event["path"] = event["requestContext"]["resourcePath"] = "/nope"

    assert_error(invoke(event), 404, "route_not_found")


def test_url_is_fetched_through_the_ssrf_guard_from_a_real_server(world: LambdaWorld) -> None:
    """The production fetcher path (prediction.url_guard) against a loopback HTTP server; only
    the address policy is widened to loopback, as the guard's own tests do."""
    from prediction import url_guard

    image = jpeg_bytes((1, 2, 3))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    world.fetcher = lambda url: url_guard.fetch_url(
        url,
        allow_http=True,
        max_bytes=MAX_IMAGE_BYTES,
        address_allowed=lambda address: ipaddress.ip_address(address).is_loopback,
    )
    url = f"http://127.0.0.1:{server.server_port}/dog.jpg"
    try:
        response = invoke(post_event(json.dumps({"url": url})))
        refused = invoke(post_event(json.dumps({"url": "http://169.254.169.254/latest/meta-data"})))
    finally:
        server.shutdown()
        server.server_close()

    assert response["statusCode"] == 201
    assert [item.input_ref for item in world.prediction_items()] == [url]
    assert_error(refused, 422, "url_forbidden_address")


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ("\ud800", "invalid_json"),  # a lone surrogate, which has no UTF-8 form (found by fuzzing: a 500)
        (json.dumps({"image": "***not base64***"}), "invalid_base64"),
        (json.dumps({"image": base64.b64encode(b"\xff\xd8\xff\xe0 truncated jpeg").decode()}), None),
    ],
)
def test_bad_input_is_400(world: LambdaWorld, body: str, code: str | None) -> None:
    assert_error(invoke(post_event(body)), 400, code)
    assert world.prediction_items() == []


def test_long_unknown_field_names_are_cut_in_the_message(world: LambdaWorld) -> None:
    body = json.dumps({"url": LABRADOR_URL, "x" * 10_000: 1}).encode()
    with pytest.raises(InputError) as caught:
        app.parse_request(body)
    assert caught.value.status == 422
    assert caught.value.message.startswith("x" * 64 + ": ")


def test_empty_binary_body_is_400(world: LambdaWorld) -> None:
    assert_error(invoke(post_event(b"", "image/jpeg", binary=True)), 400)


def test_bad_base64_envelope_is_400(world: LambdaWorld) -> None:
    event = post_event(None, "image/jpeg")
    event["body"], event["isBase64Encoded"] = "%%%%", True

    assert_error(invoke(event), 400, "invalid_base64")


def test_too_large_image_is_413(world: LambdaWorld) -> None:
    huge = jpeg_bytes() + b"\x00" * MAX_IMAGE_BYTES

    assert_error(invoke(post_event(huge, "image/jpeg", binary=True)), 413)
    assert_error(invoke(post_event(json.dumps({"image": base64.b64encode(huge).decode()}))), 413)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"hello", "text/plain"),
        (b"II*\x00" + b"\x00" * 64, "image/jpeg"),
        (b"%PDF-1.7 not an image", "image/png"),
    ],
)
def test_unsupported_media_is_415(world: LambdaWorld, body: bytes, content_type: str) -> None:
    assert_error(invoke(post_event(body, content_type, binary=True)), 415)


@pytest.mark.parametrize(
    ("body", "query"),
    [
        (json.dumps({"url": LABRADOR_URL}), {"top_k": "0"}),
        (json.dumps({"url": LABRADOR_URL}), {"top_k": "11"}),
        (json.dumps({"url": LABRADOR_URL}), {"top_k": "many"}),
        (json.dumps({"url": LABRADOR_URL, "top_k": 11}), None),
        (json.dumps({"url": LABRADOR_URL, "image": "aGk="}), None),
        (json.dumps({}), None),
        (json.dumps({"url": LABRADOR_URL, "colour": "red"}), None),
        (json.dumps({"s3_uri": "s3://someone-elses-bucket/dog.jpg"}), None),
        (json.dumps({"url": "https://images.example.com/missing.jpg"}), None),
    ],
)
def test_validation_errors_are_422(world: LambdaWorld, body: str, query: dict[str, str] | None) -> None:
    assert_error(invoke(post_event(body, query=query)), 422)
    assert world.endpoint.requests == []


def test_malformed_prediction_id_is_422(world: LambdaWorld) -> None:
    event = load_event("api_get_prediction.json")
    event["path"] = "/predictions/not-a-uuid"
    event["pathParameters"] = {"prediction_id": "not-a-uuid"}

    assert_error(invoke(event), 422, "validation_error")


def test_endpoint_refusing_the_image_keeps_its_client_status(world: LambdaWorld) -> None:
    from request_guards.errors import UnsupportedMediaTypeError

    world.endpoint.failures.append(
        UnsupportedMediaTypeError("image format not accepted", code="not_an_image")
    )

    assert_error(invoke(load_event("api_post_predictions_binary_jpeg.json")), 415, "not_an_image")


def test_endpoint_failure_is_502(world: LambdaWorld) -> None:
    from prediction.errors import EndpointError

    world.endpoint.failures.append(EndpointError("the model failed to process the image", code="model_error"))

    assert_error(invoke(load_event("api_post_predictions_binary_jpeg.json")), 502, "model_error")
    assert world.prediction_items() == []


def test_endpoint_unavailable_is_503_with_retry_after(world: LambdaWorld) -> None:
    from prediction.errors import EndpointUnavailableError

    world.endpoint.failures.append(EndpointUnavailableError("the model endpoint is busy", retry_after_s=7))

    response = invoke(load_event("api_post_predictions_binary_jpeg.json"))

    assert_error(response, 503, "endpoint_unavailable")
    assert response["multiValueHeaders"]["Retry-After"] == ["7"]


def test_endpoint_timeout_is_504(world: LambdaWorld) -> None:
    from prediction.errors import EndpointTimeoutError

    world.endpoint.failures.append(EndpointTimeoutError("the model endpoint did not answer in time"))

    assert_error(invoke(load_event("api_post_predictions_url.json")), 504, "endpoint_timeout")


def test_unexpected_error_is_a_bare_500(world: LambdaWorld) -> None:
    world.endpoint.failures.append(RuntimeError(f"boom arn:aws:sagemaker:us-east-1:{ACCOUNT_ID}:endpoint/x"))

    assert_error(invoke(load_event("api_post_predictions_url.json")), 500, "internal_error")


# --- legacy direct invoke ----------------------------------------------------------------------------


def test_legacy_url_event_returns_the_201_body_shape(world: LambdaWorld) -> None:
    api_record = body_of(invoke(load_event("api_post_predictions_url.json")))

    legacy = invoke(load_event("legacy_invoke_url.json"))

    assert set(legacy) == set(api_record)
    assert legacy["predictions"] == api_record["predictions"]
    assert len(world.prediction_items()) == 2


def test_legacy_event_errors_are_error_bodies(world: LambdaWorld) -> None:
    response = invoke({"url": "https://images.example.com/missing.jpg"})

    assert response["error"]["code"] == "url_http_error"
    assert "Traceback" not in json.dumps(response)


def test_s3_uri_outside_allow_list_names_no_internal_bucket(world: LambdaWorld) -> None:
    error = assert_error(invoke(post_event(json.dumps({"s3_uri": f"s3://{BUCKET}x/k.jpg"}))), 422)

    assert error["code"] == "s3_bucket_not_allowed"


def test_png_json_image(world: LambdaWorld) -> None:
    response = invoke(post_event(json.dumps({"image": base64.b64encode(png_bytes()).decode(), "top_k": 10})))

    assert response["statusCode"] == 201
    assert len(body_of(response)["predictions"]) == 10


def test_docs_openapi_json_is_the_generated_document(world: LambdaWorld) -> None:
    """`make openapi` writes docs/openapi.json; it must not drift from the resolver."""
    from dogbreed import REPO_ROOT

    committed = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())

    assert committed == json.loads(app.openapi_document()), "run `make openapi`"
