"""SageMaker's own wire protocols where `AWS_ENDPOINT_URL` points: a WSGI middleware in front of moto.

- SageMaker (`json` protocol 1.1, `POST /` with `X-Amz-Target: SageMaker.<Operation>`): the operations
  the local SageMaker backend answers go to it; the body is read and written by the operation's shapes
  in botocore's service model (timestamps as epoch seconds, blobs as base64), errors are the protocol's
  `{"__type": code, "message": ...}` with SageMaker's HTTP status, so botocore raises the same
  ClientError codes as on AWS. Every other SageMaker operation (and tag calls on ARNs the backend does
  not hold) stays moto's.
- sagemaker-runtime (`rest-json`, `POST /endpoints/{EndpointName}/invocations`, signed as "sagemaker"):
  forwarded to the backend's runtime API, which routes, limits and answers it (see `runtime`).

    app = SageMakerApi(moto_app)
    app.backend = LocalSageMaker(...)      # until then every request is moto's
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

import botocore.session
import httpx
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import Shape
from botocore.utils import parse_to_aware_datetime
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from dogbreed.local.sagemaker.runtime import INVOKE_ENDPOINT_PAYLOAD_LIMIT

logger = logging.getLogger(__name__)

TARGET_PREFIX = "SageMaker."
CONTENT_TYPE = "application/x-amz-json-1.1"
INVOCATIONS_PATH = re.compile(r"^/endpoints/[^/]+/invocations$")
# Request headers the runtime API reads; response headers that belong to one hop only.
_FORWARDED = re.compile(r"^(content-type|accept|x-amzn-sagemaker-.*)$", re.IGNORECASE)
_HOP_BY_HOP = frozenset({"connection", "content-length", "date", "server", "transfer-encoding", "keep-alive"})

WireResponse = tuple[int, list[tuple[str, str]], bytes]
Leaf = Callable[[Any, Shape], Any]


@functools.cache
def service_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


# ----------------------------------------------------------------------------- shapes


def _walk(value: Any, shape: Shape, leaf: Leaf) -> Any:
    """`value` rebuilt along `shape` (members it does not model are dropped), `leaf` on the scalars."""
    if shape.type_name == "structure" and not getattr(shape, "is_document_type", False):
        return {
            name: _walk(value[name], member, leaf)
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if shape.type_name == "list":
        return [_walk(item, shape.member, leaf) for item in value]
    if shape.type_name == "map":
        return {key: _walk(item, shape.value, leaf) for key, item in value.items()}
    return leaf(value, shape)


def _to_wire(value: Any, shape: Shape) -> Any:
    if shape.type_name == "timestamp":  # the json protocol's default: epoch seconds, millisecond precision
        return round(parse_to_aware_datetime(value).timestamp(), 3)
    if shape.type_name == "blob":
        return base64.b64encode(value).decode("ascii")
    return value


def _from_wire(value: Any, shape: Shape) -> Any:
    if shape.type_name == "timestamp":
        return parse_to_aware_datetime(value)
    if shape.type_name == "blob":
        return base64.b64decode(value)
    return value


def serialize(result: dict[str, Any], shape: Shape | None) -> bytes:
    """A backend response as the json protocol's body for the operation's output shape."""
    return json.dumps(_walk(result, shape, _to_wire) if shape is not None else {}).encode()


def deserialize(body: bytes, shape: Shape | None) -> dict[str, Any]:
    """A json protocol request body as boto3's keyword arguments; ValueError when it is not one."""
    try:
        document = json.loads(body or b"{}")
        if not isinstance(document, dict):
            raise ValueError("the request body is not a JSON object")
        params: dict[str, Any] = _walk(document, shape, _from_wire) if shape is not None else {}
    except (AttributeError, TypeError, ValueError) as error:  # binascii.Error is a ValueError
        raise ValueError(f"Cannot deserialize the request: {error}") from error
    return params


def error_response(code: str, message: str, status: int) -> WireResponse:
    """The json protocol's error: botocore reads the code from `__type` and the message from `message`."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, _headers(("x-amzn-ErrorType", code)), body


def _headers(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", str(uuid.uuid4())), *extra]


# ----------------------------------------------------------------------------- dispatch


def handle(backend: Any, operation: str, body: bytes) -> WireResponse | None:
    """Answer `SageMaker.<operation>` from the backend; None when the call is not the backend's."""
    method = xform_name(operation)
    if method not in backend.operations():
        return None
    model = service_model().operation_model(operation)
    try:
        params = deserialize(body, model.input_shape)
    except ValueError as error:
        return error_response("SerializationException", str(error), 400)
    if not backend.answers(method, params):
        return None
    try:
        result = serialize(getattr(backend, method)(**params) or {}, model.output_shape)
    except ClientError as error:
        details = error.response.get("Error", {})
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        return error_response(str(details.get("Code")), str(details.get("Message", "")), status)
    except Exception as error:  # the service's own fault, never a caller's
        logger.exception("SageMaker.%s failed", operation)
        return error_response("InternalFailure", f"{type(error).__name__}: {error}", 500)
    return 200, _headers(), result


def _is_invocation(environ: dict[str, Any]) -> bool:
    return environ.get("REQUEST_METHOD") == "POST" and bool(
        INVOCATIONS_PATH.match(environ.get("PATH_INFO", ""))
    )


class SageMakerApi:
    """WSGI middleware: SageMaker's and sagemaker-runtime's requests to the backend, the rest to `app`."""

    def __init__(self, app: Callable[..., Iterable[bytes]], backend: Any = None) -> None:
        self._app = app
        self.backend = backend
        self._http = httpx.Client(timeout=httpx.Timeout(75.0, connect=5.0))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        backend = self.backend
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        response: WireResponse | None = None
        if backend is not None and target.startswith(TARGET_PREFIX):
            body = get_input_stream(environ).read()
            response = handle(backend, target.removeprefix(TARGET_PREFIX), body)
            if response is None:  # moto reads the body again
                environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        elif backend is not None and _is_invocation(environ):
            response = self._invoke(backend.runtime_url, environ)
        if response is None:
            return self._app(environ, start_response)
        status, headers, body = response
        reason = HTTP_STATUS_CODES.get(status, "Error")
        start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _invoke(self, runtime_url: str, environ: dict[str, Any]) -> WireResponse:
        """InvokeEndpoint through the runtime API, which applies the payload quota itself: reading one
        byte past it is enough for the runtime to refuse the request."""
        body = get_input_stream(environ).read(INVOKE_ENDPOINT_PAYLOAD_LIMIT + 1)
        headers = {
            key[5:].replace("_", "-"): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and _FORWARDED.match(key[5:].replace("_", "-"))
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        url = f"{runtime_url}{quote(environ['PATH_INFO'])}"
        try:
            upstream = self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return error_response("ServiceUnavailable", f"the runtime API is unreachable: {error}", 503)
        forwarded = [
            (key, value) for key, value in upstream.headers.items() if key.lower() not in _HOP_BY_HOP
        ]
        return upstream.status_code, forwarded, upstream.content

    def close(self) -> None:
        self._http.close()
