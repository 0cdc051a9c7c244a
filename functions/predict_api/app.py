"""`predict_api`: the REST API (API Gateway proxy events) and the legacy direct invoke `{"url": ...}`.

Thin handler: parse the event, call one `PredictionService` method, serialize the answer. Every error
leaves as `{"error": {"code", "message"}}` with the status of its domain class; nothing from the
Lambda context, AWS error messages or tracebacks ever reaches a response.
"""

import base64
import binascii
import json
from functools import lru_cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction import observability
from prediction.dependencies import get_service
from prediction.errors import PredictionError
from prediction.image_source import BINARY_CONTENT_TYPES
from prediction.models import (
    MAX_TOP_K,
    MIN_TOP_K,
    PREDICTION_ID_PATTERN,
    ErrorResponse,
    HealthResponse,
    PredictionRecord,
    PredictionRequest,
)
from prediction.observability import logger, metrics, tracer
from prediction.settings import get_settings
from pydantic import ValidationError
from request_guards.errors import BadRequestError, InputError, client_text
from request_guards.errors import ValidationError as InputValidationError

API_TITLE = "dogbreed prediction API"
API_VERSION = "1.0.0"
SERVICE_NAME = "dogbreed"

settings = get_settings()
app = APIGatewayRestResolver(
    enable_validation=True,
    cors=CORSConfig(allow_origin=settings.cors_allow_origin, allow_headers=["Content-Type"], max_age=300),
)
# Built during init (cold start), not on the first request.
get_service()

TopKQuery = Annotated[
    int | None, Query(ge=MIN_TOP_K, le=MAX_TOP_K, description="How many breeds to return (default 3).")
]
PredictionIdPath = Annotated[str, Path(pattern=PREDICTION_ID_PATTERN, description="A prediction id (UUID).")]

ERROR_RESPONSES: dict[int, OpenAPIResponse] = {
    status: {"description": description, "content": {"application/json": {"model": ErrorResponse}}}
    for status, description in (
        (400, "Bad input: malformed JSON or base64, corrupt or empty image."),
        (413, "The image is too large (bytes or pixels)."),
        (415, "Unsupported content type or image format."),
        (422, "Validation error: top_k out of range, not exactly one source, forbidden URL or bucket."),
        (502, "The model endpoint failed."),
        (503, "The model endpoint is busy or not deployed, or the store is unavailable; see Retry-After."),
        (504, "The model endpoint timed out."),
    )
}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": code, "message": message}},
        headers=headers,
    )


@app.post(
    "/predictions",
    status_code=HTTPStatus.CREATED,
    summary="Classify a dog image",
    description="JSON body with exactly one of url, image (base64) or s3_uri, or a binary image body.",
    responses={201: {"description": "The stored prediction."}, **ERROR_RESPONSES},
    tags=["predictions"],
)
@tracer.capture_method
def create_prediction(top_k: TopKQuery = None) -> PredictionRecord:
    event = app.current_event
    content_type = event.headers.get("content-type", "") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    body = _raw_body(event.body, bool(event.is_base64_encoded))
    service = get_service()
    if media_type in ("", "application/json"):
        request = parse_request(body)
        k = request.top_k or top_k or settings.default_top_k
        return service.predict_request(request, top_k=k)
    return service.predict_binary(body, content_type=media_type, top_k=top_k or settings.default_top_k)


@app.get(
    "/predictions/<prediction_id>",
    summary="A stored prediction",
    responses={404: {"description": "No such prediction."}, 422: ERROR_RESPONSES[422]},
    tags=["predictions"],
)
@tracer.capture_method
def get_prediction(prediction_id: PredictionIdPath) -> PredictionRecord:
    return get_service().get(prediction_id)


@app.get("/health", summary="Liveness of the API function", tags=["health"])
def health() -> HealthResponse:
    return HealthResponse(service=SERVICE_NAME)


@app.get("/openapi.json", include_in_schema=False)
def openapi_json() -> Response[Any]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document())


@lru_cache(maxsize=1)
def openapi_document() -> str:
    """The resolver's generated document, plus the request body it cannot infer (JSON or binary)."""
    document = json.loads(app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["PredictionRequest"] = PredictionRequest.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    binary = {"schema": {"type": "string", "format": "binary"}}
    document["paths"]["/predictions"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictionRequest"}},
            **dict.fromkeys(sorted(BINARY_CONTENT_TYPES), binary),
        },
    }
    return json.dumps(document, indent=2, sort_keys=True)


def parse_request(body: bytes) -> PredictionRequest:
    """400 for a body that is not JSON, 422 for JSON that is not a valid request."""
    try:
        payload = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequestError("the body is not valid JSON", code="invalid_json") from error
    except RecursionError as error:  # a deeply nested document exhausts the parser's stack
        raise BadRequestError("the JSON body is nested too deeply", code="invalid_json") from error
    if not isinstance(payload, dict):
        raise BadRequestError("the body must be a JSON object", code="invalid_json")
    try:
        return PredictionRequest.model_validate(payload)
    except ValidationError as error:
        raise InputValidationError(_describe(error.errors())) from None


def _raw_body(body: str | None, is_base64: bool) -> bytes:
    if not body:
        return b""
    if not is_base64:
        # A JSON event can carry lone surrogates: they pass as bytes that the JSON or image parser refuses.
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequestError("the body is not valid base64", code="invalid_base64") from error


def _describe(errors: Any) -> str:
    """Field locations and pydantic's messages, never the rejected input itself."""
    parts = []
    for item in list(errors)[:5]:
        # A location can be a client's field name of any length and content.
        loc = (
            ".".join(client_text(str(part)) for part in item.get("loc", ()) if part not in ("body",))
            or "body"
        )
        parts.append(f"{loc}: {item.get('msg', item.get('type', 'invalid'))}")
    return "; ".join(parts)


@app.exception_handler(InputError)
def handle_input_error(error: InputError) -> Response[Any]:
    observability.record_rejection(source="api", reason=type(error).default_code)
    logger.info("request rejected", extra={"status": error.status, "code": error.code})
    return _error(error.status, error.code, error.message)


@app.exception_handler(RequestValidationError)
def handle_validation_error(error: RequestValidationError) -> Response[Any]:
    observability.record_rejection(source="api", reason=InputValidationError.default_code)
    return _error(
        HTTPStatus.UNPROCESSABLE_ENTITY, InputValidationError.default_code, _describe(error.errors())
    )


@app.exception_handler(PredictionError)
def handle_prediction_error(error: PredictionError) -> Response[Any]:
    headers = None
    if error.retry_after_s is not None:
        headers = {"Retry-After": str(error.retry_after_s)}
    if error.status >= 500:
        logger.warning(
            "prediction failed", extra={"status": error.status, "code": error.code}, exc_info=error
        )
    return _error(error.status, error.code, error.message, headers)


@app.not_found
def handle_not_found(_exc: Exception) -> Response[Any]:
    return _error(HTTPStatus.NOT_FOUND, "route_not_found", "no such route")


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response[Any]:
    logger.exception("unhandled error")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")


def is_legacy_event(event: dict[str, Any]) -> bool:
    """The pre-API direct invoke: `{"url": "https://..."}` (or `image` / `s3_uri`), no HTTP envelope."""
    return isinstance(event, dict) and "httpMethod" not in event and "requestContext" not in event


def handle_legacy(event: dict[str, Any]) -> dict[str, Any]:
    """Same body as `201` on success; `{"error": {...}}` otherwise (a direct invoke has no status line)."""
    try:
        request = parse_request(json.dumps(event).encode())
        record = get_service().predict_request(request, top_k=request.top_k or settings.default_top_k)
    except InputError as error:
        observability.record_rejection(source="api", reason=type(error).default_code)
        return error.to_dict()
    except PredictionError as error:
        logger.warning("prediction failed", extra={"status": error.status, "code": error.code})
        return {"error": {"code": error.code, "message": error.message}}
    return record.model_dump(mode="json")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    observability.start_invocation("api")
    if is_legacy_event(event):
        return handle_legacy(event)
    return app.resolve(event, context)
