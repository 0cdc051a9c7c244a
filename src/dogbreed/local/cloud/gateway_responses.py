"""What API Gateway answers by itself, as the template configures it: the API's `GatewayResponses`
(status code, headers, the application/json template) for each response type, falling back to the
`DEFAULT_4XX`/`DEFAULT_5XX` entries and then to API Gateway's own default answer, as the
"Gateway response types" page of the API Gateway guide describes; and the stage's request
throttling (`MethodSettings` ThrottlingRateLimit / ThrottlingBurstLimit, a token bucket) that answers
THROTTLED.

Response templates here are static JSON (the template uses no `$context` variables), so the body is
the template itself."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.responses import Response

# Response type -> (API Gateway's default status, its default body) for the types the local API meets.
DEFAULTS: Final[dict[str, tuple[int, dict[str, str]]]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, {"message": "Missing Authentication Token"}),
    "THROTTLED": (429, {"message": "Too Many Requests"}),
    "REQUEST_TOO_LARGE": (413, {"message": "Request Too Long"}),
    "INTEGRATION_TIMEOUT": (504, {"message": "Endpoint request timed out"}),
    # A Lambda proxy function error or malformed answer (502) and a rejected invocation (500) have no
    # type of their own: DEFAULT_5XX applies with their status.
    "DEFAULT_5XX": (502, {"message": "Internal server error"}),
}


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    headers: dict[str, str]
    body: str | None


def _unquote(value: Any) -> str:
    """Header values are written as API Gateway literals: "'value'"."""
    text = str(value)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text


def parse(gateway_responses: dict[str, Any]) -> dict[str, GatewayResponse]:
    """The API's `GatewayResponses` property (intrinsic functions resolved) by response type."""
    parsed = {}
    for kind, spec in gateway_responses.items():
        headers = spec.get("ResponseParameters", {}).get("Headers", {})
        status = spec.get("StatusCode")
        parsed[kind] = GatewayResponse(
            status=int(status) if status is not None else None,
            headers={str(name): _unquote(value) for name, value in headers.items()},
            body=spec.get("ResponseTemplates", {}).get("application/json"),
        )
    return parsed


def answer(configured: dict[str, GatewayResponse], kind: str, status: int | None = None) -> Response:
    """API Gateway's answer of response type `kind` (`status` for the DEFAULT_5XX-only cases)."""
    default_status, default_body = DEFAULTS.get(kind, DEFAULTS["DEFAULT_5XX"])
    status = status or default_status
    fallback = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
    response = configured.get(kind) or configured.get(fallback)
    if response is None:
        return Response(json.dumps(default_body), status_code=status, media_type="application/json")
    headers = dict(response.headers)
    if kind == "THROTTLED":
        headers.setdefault("x-amzn-ErrorType", "ThrottlingException")
    return Response(
        response.body if response.body is not None else json.dumps(default_body),
        status_code=response.status or status,
        headers=headers,
        media_type="application/json",
    )


@dataclass
class StageThrottle:
    """A token bucket per stage: `rate` requests a second on average, bursts of `burst`."""

    rate: float
    burst: float
    _tokens: float = field(init=False)
    _last: float = field(init=False, default_factory=time.monotonic)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._tokens = self.burst

    def admit(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def stage_throttle(method_settings: list[dict[str, Any]]) -> StageThrottle | None:
    """The `/*` `*` method setting's throttle, if the template sets one."""
    for setting in method_settings:
        if setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*":
            rate, burst = setting.get("ThrottlingRateLimit"), setting.get("ThrottlingBurstLimit")
            if rate is not None and burst is not None:
                return StageThrottle(float(rate), float(burst))
    return None
