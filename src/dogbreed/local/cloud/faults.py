"""Fault injection for the local cloud: make AWS APIs, the endpoint, training jobs or endpoint updates
fail on purpose, at run time, to prove the product survives it (`dogbreed local fault`, tests).

Four kinds of fault, all held in one `FaultRegistry` in the cloud process:

- `aws`: `AwsFaultMiddleware` wraps moto's WSGI app and answers a matching request with a real AWS
  error shape (JSON protocol `__type`, REST-XML `<Error>`, query `<ErrorResponse>`). It matches the
  service (the SigV4 credential scope), the operation (read from botocore's service models, as the
  IAM recorder reads calls: `local/iam/wire.py`) and a substring of the request (path, query string
  and, for the JSON and query protocols, the body: a table name, a queue URL, an item's key).
- `endpoint`: InvokeEndpoint answers `ThrottlingException` (429), `ServiceUnavailable` (503),
  `InternalFailure` (500) or `ModelError` (424, original status 500); "endpoint down" is a
  `ServiceUnavailable` fault with no count (until cleared).
- `training`: a matching training job's processes are killed `delay_seconds` after they start, so the
  job ends Failed with a FailureReason.
- `endpoint_update`: the next matching UpdateEndpoint's new fleet is a broken candidate. `exit` (the
  default): its model server exits at once, the fleet fails its ping health check and the endpoint
  keeps serving its old config; `server-error`: it starts, then answers every invocation with a 500;
  `slow`: it answers every invocation `delay_seconds` late. The last two take traffic during the
  update, so the rollback alarms (5xx, latency) are what send it back to the old fleet.

A fault applies to the next `count` matches (`None`: until cleared). Every add, hit and clear is
logged, and each fault counts the requests or jobs it hit.
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any

from dogbreed.local.iam.recorder import RecordedCall, credential_scope, wsgi_call
from dogbreed.local.iam.wire import ApiCall, UnreadableCall, read_call

logger = logging.getLogger(__name__)

KINDS = ("aws", "endpoint", "training", "endpoint_update")

# InvokeEndpoint errors a fault can answer with (sagemaker-runtime codes and statuses).
ENDPOINT_ERRORS: dict[str, int] = {
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "ModelError": 424,
}
# How a broken candidate of an `endpoint_update` fault behaves (local/sagemaker/faulty_model.py).
ENDPOINT_UPDATE_MODES = ("exit", "server-error", "slow")
# HTTP statuses AWS uses for the error codes worth injecting; anything else is a 500.
AWS_ERROR_STATUS: dict[str, int] = {
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "Throttling": 400,
    "RequestLimitExceeded": 400,
    "ServiceUnavailable": 503,
    "SlowDown": 503,
    "AccessDenied": 403,
    "AccessDeniedException": 400,
    "InternalServerError": 500,
    "InternalError": 500,
    "InternalFailure": 500,
}
DEFAULT_TRAINING_DELAY_SECONDS = 1.0
_SPEC_FIELDS = frozenset(
    {"kind", "error", "service", "operation", "resource", "message", "status", "count", "delay_seconds"}
)


@dataclass
class Fault:
    """One injected fault. `resource` is a substring: of the request (aws), of the endpoint name
    (endpoint, endpoint_update) or of the training job name (training); empty matches all."""

    kind: str
    error: str = ""
    service: str = ""
    operation: str = ""
    resource: str = ""
    message: str = ""
    status: int = 0
    count: int | None = 1
    delay_seconds: float = DEFAULT_TRAINING_DELAY_SECONDS
    id: str = field(default_factory=lambda: f"f-{uuid.uuid4().hex[:8]}")
    remaining: int | None = None
    hits: int = 0
    created_at: float = field(default_factory=time.time)
    last_hit_at: float | None = None

    @property
    def active(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


def build_fault(spec: dict[str, Any]) -> Fault:
    """A validated fault from its JSON form (the control API's POST body); ValueError says what is wrong."""
    unknown = set(spec) - _SPEC_FIELDS
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    kind = str(spec.get("kind", ""))
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    count = spec.get("count", 1)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError("count must be a positive integer, or null for until cleared")
    try:
        status = int(spec.get("status") or 0)
        delay_seconds = float(spec.get("delay_seconds", DEFAULT_TRAINING_DELAY_SECONDS))
    except (TypeError, ValueError) as error:
        raise ValueError("status and delay_seconds must be numbers") from error
    fault = Fault(
        kind=kind,
        error=str(spec.get("error") or ""),
        service=str(spec.get("service") or "").lower(),
        operation=str(spec.get("operation") or ""),
        resource=str(spec.get("resource") or ""),
        message=str(spec.get("message") or ""),
        status=status,
        count=count,
        delay_seconds=delay_seconds,
    )
    if kind == "aws":
        if not fault.service:
            raise ValueError("an aws fault needs a service (the SigV4 name: dynamodb, s3, sqs, ...)")
        fault.error = fault.error or ("InternalError" if fault.service == "s3" else "InternalServerError")
        fault.status = fault.status or AWS_ERROR_STATUS.get(fault.error, 500)
    elif kind == "endpoint":
        fault.error = fault.error or "ServiceUnavailable"
        if fault.error not in ENDPOINT_ERRORS:
            raise ValueError(f"an endpoint fault's error is one of {', '.join(ENDPOINT_ERRORS)}")
        fault.status = ENDPOINT_ERRORS[fault.error]
    elif kind == "endpoint_update":
        fault.error = fault.error or "exit"
        if fault.error not in ENDPOINT_UPDATE_MODES:
            raise ValueError(f"an endpoint_update fault's error is one of {', '.join(ENDPOINT_UPDATE_MODES)}")
    if fault.delay_seconds < 0:
        raise ValueError("delay_seconds must not be negative")
    fault.message = fault.message or f"{fault.error or 'failure'} (injected fault {fault.id})"
    fault.remaining = fault.count
    return fault


class FaultRegistry:
    """The cloud's active and spent faults; `take` is the hook every injection point calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._active_kinds: set[str] = set()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults[fault.id] = fault
            self._refresh()
        logger.warning("fault %s added: %s", fault.id, _describe(fault))
        return fault

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults.values())

    def clear(self, ids: Iterable[str] | None = None) -> list[Fault]:
        """Remove the given faults (all when `ids` is None); returns what was removed."""
        with self._lock:
            wanted = list(self._faults) if ids is None else [i for i in ids if i in self._faults]
            removed = [self._faults.pop(i) for i in wanted]
            self._refresh()
        for fault in removed:
            logger.warning("fault %s cleared after %d hit(s)", fault.id, fault.hits)
        return removed

    def armed(self, kind: str) -> bool:
        """Cheap check for the hot paths: is any fault of this kind still active?"""
        return kind in self._active_kinds

    def take(self, kind: str, matches: Callable[[Fault], bool]) -> Fault | None:
        """The first active fault of `kind` that `matches`, with one hit counted; None if none."""
        if kind not in self._active_kinds:
            return None
        with self._lock:
            for fault in self._faults.values():
                if fault.kind != kind or not fault.active or not matches(fault):
                    continue
                fault.hits += 1
                fault.last_hit_at = time.time()
                if fault.remaining is not None:
                    fault.remaining -= 1
                self._refresh()
                hit = fault.hits
                break
            else:
                return None
        logger.warning("fault %s hit (%d): %s", fault.id, hit, _describe(fault))
        return fault

    def take_named(self, kind: str, name: str) -> Fault | None:
        """For the name-matched kinds (endpoint, training, endpoint_update)."""
        return self.take(kind, lambda fault: fault.resource in name)

    def _refresh(self) -> None:
        self._active_kinds = {fault.kind for fault in self._faults.values() if fault.active}


def _describe(fault: Fault) -> str:
    target = " ".join(
        part
        for part in (fault.service, fault.operation, f"resource~{fault.resource!r}" if fault.resource else "")
        if part
    )
    budget = "until cleared" if fault.count is None else f"{fault.remaining}/{fault.count} left"
    return f"{fault.kind} {target or '*'} -> {fault.error or 'failure'} ({budget})"


# --------------------------------------------------------------------------- AWS API faults


def read_request(environ: dict[str, Any]) -> tuple[RecordedCall, ApiCall | None] | None:
    """The request to moto's server and the API call it is, read as the IAM recorder reads calls
    (botocore's service models; None for a request no model explains); None when it is unsigned."""
    scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""), environ.get("QUERY_STRING", ""))
    if scope is None:
        return None
    call = wsgi_call(environ, scope)
    try:
        return call, read_call(call)
    except (UnreadableCall, ValueError):  # ValueError: a body that is not the JSON it claims to be
        return call, None


def aws_fault_matches(fault: Fault, call: RecordedCall, api: ApiCall | None) -> bool:
    """Service (the SigV4 name), operation (only a fault without one matches an unreadable request)
    and a substring of the path, query string or RPC body."""
    text = f"{call.path}?{call.query}\n{call.body.decode('utf-8', errors='replace')}"
    operation = api.operation.lower() if api is not None else None
    return (
        fault.service == call.service
        and (not fault.operation or fault.operation.lower() == operation)
        and fault.resource in text
    )


def request_protocol(call: RecordedCall, api: ApiCall | None) -> str:
    if api is not None:
        return api.protocol
    if call.header("x-amz-target"):
        return "json"
    if call.header("content-type").startswith("application/x-www-form-urlencoded"):
        return "query"
    return "rest-xml" if call.service == "s3" else "rest-json"


def error_response(fault: Fault, protocol: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error as the request's protocol spells it, so botocore raises the modeled ClientError."""
    request_id = str(uuid.uuid4())
    if protocol == "smithy-rpc-v2-cbor":  # CloudWatch's protocol in botocore
        body = _cbor_text_map({"__type": fault.error, "message": fault.message})
        headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return fault.status, [*headers, ("x-amzn-RequestId", request_id)], body
    if protocol not in ("rest-xml", "query"):
        content_type = "application/x-amz-json-1.0" if protocol == "json" else "application/json"
        body = json.dumps({"__type": fault.error, "message": fault.message}).encode()
        headers = [("Content-Type", content_type), ("x-amzn-ErrorType", fault.error)]
        headers.append(("x-amzn-RequestId", request_id))
        return fault.status, headers, body
    code, message = html.escape(fault.error, quote=False), html.escape(fault.message, quote=False)
    if protocol == "rest-xml":
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    else:
        party = "Sender" if fault.status < 500 else "Receiver"
        xml = (
            f"<ErrorResponse><Error><Type>{party}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return fault.status, [("Content-Type", "text/xml"), ("x-amz-request-id", request_id)], xml.encode()


class AwsFaultMiddleware:
    """WSGI middleware around moto's server app: matching requests get the fault's error response."""

    def __init__(self, app: Callable[..., Iterable[bytes]], faults: FaultRegistry) -> None:
        self._app = app
        self._faults = faults

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self._faults.armed("aws") or environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._app(environ, start_response)
        request = read_request(environ)
        if request is None:
            return self._app(environ, start_response)
        call, api = request
        fault = self._faults.take("aws", lambda candidate: aws_fault_matches(candidate, call, api))
        if fault is None:
            return self._app(environ, start_response)
        status, headers, body = error_response(fault, request_protocol(call, api))
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_reason(status)}", headers)
        return [body]


def _cbor_text_map(document: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949: major types 5 and 3), all an error body needs."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        size = next(size for size in (1, 2, 4, 8) if length < 1 << (8 * size))
        return bytes([major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[size]]) + length.to_bytes(size, "big")

    out = bytearray(head(5, len(document)))
    for key, value in document.items():
        for text in (key.encode(), value.encode()):
            out += head(3, len(text)) + text
    return bytes(out)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status the fault's caller chose that HTTP does not name
        return "Error"
