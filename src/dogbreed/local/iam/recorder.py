"""Records the AWS calls the stack's principals make on the local cloud: every request signed with a
role's access key (`identity.is_role_key`), as CloudTrail would log it. The operator's calls (the
demo, the CLI, tests: credentials `testing`) and moto's own Step Functions engine (`ak`) are not a
role's and are not recorded; the state machine's calls are read from its execution histories.

Two front doors: `WsgiCallRecorder` in front of moto and the local SageMaker's API (the AWS port),
and `AsgiCallRecorder` in front of the sagemaker-runtime API (InvokeEndpoint, which the functions call
directly). Recording keeps what identifies the call (the SigV4 credential scope, method, path, query,
the `X-Amz-Target` and `x-amz-*` headers) and, for RPC protocols only (JSON, query), the body, which
holds the parameters there; REST bodies (S3 objects, images) are never read. Parsing into operations
and parameters happens when the report is made (`wire`), not on the request path.
"""

from __future__ import annotations

import base64
import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from werkzeug.wsgi import get_input_stream

from dogbreed.local.iam.identity import is_role_key

# Credential=<key id>/<date>/<region>/<service>/aws4_request
_CREDENTIAL: Final = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_KEPT_HEADERS: Final = re.compile(
    r"^(x-amz-(?!security-token|date|content-sha256).*|content-type)$", re.IGNORECASE
)
_RPC_CONTENT: Final = ("application/x-amz-json", "application/x-www-form-urlencoded", "application/cbor")
MAX_BODY_BYTES: Final = 1 << 20
DEFAULT_MAX_CALLS: Final = 200_000


@dataclass(frozen=True)
class RecordedCall:
    """One request as signed and sent (what identifies the operation and its parameters)."""

    access_key_id: str
    service: str  # the SigV4 scope's service (the signing name: s3, sagemaker, monitoring, ...)
    region: str
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str:
        return next((value for key, value in self.headers if key.lower() == name.lower()), "")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "body": base64.b64encode(self.body).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedCall:
        headers = tuple((str(key), str(value)) for key, value in data["headers"])
        return cls(**{**data, "headers": headers, "body": base64.b64decode(data["body"])})


def credential_scope(authorization: str, query: str = "") -> tuple[str, str, str] | None:
    """(access key id, region, service) of a SigV4 Authorization header or presigned query string."""
    match = _CREDENTIAL.search(authorization or "") or _CREDENTIAL.search(
        "Credential=" + unquote(dict(parse_qsl(query)).get("X-Amz-Credential", ""))
    )
    return None if match is None else (match.group(1), match.group(2), match.group(3))


def wsgi_call(environ: dict[str, Any], scope: tuple[str, str, str]) -> RecordedCall:
    """The request as a `RecordedCall`; an RPC body (JSON, query) up to `MAX_BODY_BYTES` is read and
    put back for the app, a REST body (S3 objects, images) never."""
    headers = [
        (key[5:].replace("_", "-").lower(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_") and _KEPT_HEADERS.match(key[5:].replace("_", "-"))
    ]
    if environ.get("CONTENT_TYPE"):
        headers.append(("content-type", environ["CONTENT_TYPE"]))
    body = b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:  # not a length: the app answers the request as it is
        length = 0
    if _is_rpc(headers) and 0 < length <= MAX_BODY_BYTES:
        body = get_input_stream(environ).read()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    return RecordedCall(
        access_key_id=scope[0],
        service=scope[2],
        region=scope[1],
        method=environ.get("REQUEST_METHOD", ""),
        path=environ.get("PATH_INFO", ""),
        query=environ.get("QUERY_STRING", ""),
        headers=tuple(sorted(headers)),
        body=body,
    )


def _role_scope(authorization: str) -> tuple[str, str, str] | None:
    scope = credential_scope(authorization)
    return scope if scope is not None and is_role_key(scope[0]) else None


def _is_rpc(headers: Iterable[tuple[str, str]]) -> bool:
    for key, value in headers:
        lower = key.lower()
        if lower == "x-amz-target" or (lower == "content-type" and value.lower().startswith(_RPC_CONTENT)):
            return True
    return False


class CallLog:
    """The recorded calls, in order; at most `max_calls` (then counted as dropped)."""

    def __init__(self, max_calls: int = DEFAULT_MAX_CALLS) -> None:
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self._max = max_calls
        self.dropped = 0

    def add(self, call: RecordedCall) -> None:
        with self._lock:
            if len(self._calls) < self._max:
                self._calls.append(call)
            else:
                self.dropped += 1

    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def to_json(self) -> dict[str, Any]:
        return {"calls": [call.to_json() for call in self.calls()], "dropped": self.dropped}


class WsgiCallRecorder:
    """WSGI middleware: records role-signed requests into `log`, then passes them on unchanged."""

    def __init__(self, app: Callable[..., Iterable[bytes]], log: CallLog) -> None:
        self._app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scope = _role_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is not None:
            self.log.add(wsgi_call(environ, scope))
        return self._app(environ, start_response)


class AsgiCallRecorder:
    """ASGI middleware with the same rule (the sagemaker-runtime API: REST, so no body is read)."""

    def __init__(self, app: Any, log: CallLog) -> None:
        self._app = app
        self.log = log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
            authorization = next((v for k, v in headers if k.lower() == "authorization"), "")
            signed = _role_scope(authorization)
            if signed is not None:
                self.log.add(
                    RecordedCall(
                        access_key_id=signed[0],
                        service=signed[2],
                        region=signed[1],
                        method=scope.get("method", ""),
                        path=scope.get("path", ""),
                        query=scope.get("query_string", b"").decode("latin-1"),
                        headers=tuple(sorted((k.lower(), v) for k, v in headers if _KEPT_HEADERS.match(k))),
                    )
                )
        await self._app(scope, receive, send)
