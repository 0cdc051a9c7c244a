"""The local HTTP API, like `sam local start-api`: the template's `Api` events served on 127.0.0.1.

Each request becomes an API Gateway REST proxy event (path parameters, query strings, headers,
request context; bodies of the API's BinaryMediaTypes base64-encoded with isBase64Encoded) and the
function's real handler runs in the local Lambda runtime (a synchronous invocation: throttled when the
function has no concurrency left, as Lambda throttles API Gateway's call). The proxy response is
turned back into HTTP (base64 bodies decoded). What API Gateway answers by itself (an unknown route:
403 "Missing Authentication Token"; a function error: 502; a throttled invocation: 500; the stage's
request throttle: 429) goes through the template's `GatewayResponses` (`gateway_responses`), as API
Gateway applies them. Every answer is counted in
the AWS/ApiGateway metrics API Gateway publishes (`api_metrics`: Count, 4XXError, 5XXError, Latency
by ApiName and Stage) when the cloud gives the API a metric buffer.

Payload limits, as API Gateway and Lambda answer them:
- a body over 10 MiB: 413, text/plain `HTTP content length exceeded 10485760 bytes.` (API Gateway's
  front door answers it before any gateway response applies); the body is read as a stream and never
  past the limit;
- a proxy event over Lambda's 6 MiB synchronous request limit (a binary body is base64-encoded in
  the event, so about 4.5 MiB of image): REQUEST_TOO_LARGE, 413 (`{"message": "Request Too Long"}` by
  default).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from dogbreed.local.cloud import api_metrics, gateway_responses
from dogbreed.local.lambda_runtime.errors import SYNC_REQUEST_LIMIT, TooManyRequestsError
from dogbreed.local.lambda_runtime.function import FunctionSpec
from dogbreed.local.lambda_runtime.runtime import LambdaRuntime
from dogbreed.local.metric_buffer import MetricBuffer
from dogbreed.streamed_body import BodyTooLargeError, content_length_exceeded, read_limited_body
from dogbreed.template_stack import TemplateStack

ACCOUNT_ID = "123456789012"
API_GATEWAY_PAYLOAD_LIMIT = 10 * 1024 * 1024  # REST API request payload quota (10,485,760 bytes)


@dataclass(frozen=True)
class ApiRoute:
    resource: str  # "/predictions/{prediction_id}"
    method: str  # "GET" | "ANY"
    function_logical_id: str
    pattern: re.Pattern[str]

    def match(self, path: str, method: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class ApiSpec:
    api_logical_id: str
    stage: str
    binary_media_types: tuple[str, ...]
    routes: tuple[ApiRoute, ...]
    api_name: str = ""  # the RestApi's name: the ApiName dimension of its metrics
    responses: dict[str, gateway_responses.GatewayResponse] = field(default_factory=dict)
    method_settings: tuple[dict[str, Any], ...] = ()


def _path_pattern(resource: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{[^}]+\})", resource):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex)


def api_spec(stack: TemplateStack) -> ApiSpec:
    """The template's REST API: its functions' `Api` events, stage and binary media types."""
    routes: list[ApiRoute] = []
    api_ids: set[str] = set()
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "Api":
                continue
            properties = event["Properties"]
            rest_api = properties.get("RestApiId", {})
            if isinstance(rest_api, dict) and "Ref" in rest_api:
                api_ids.add(rest_api["Ref"])
            method = str(properties["Method"]).upper()
            routes.append(
                ApiRoute(
                    properties["Path"],
                    "ANY" if method == "ANY" else method,
                    logical_id,
                    _path_pattern(properties["Path"]),
                )
            )
    api_id = next(iter(sorted(api_ids)), "ServerlessRestApi")
    api_properties = stack.resolve(stack.resources.get(api_id, {}).get("Properties", {}))
    binary = tuple(str(item).replace("~1", "/") for item in api_properties.get("BinaryMediaTypes", []))
    return ApiSpec(
        api_id,
        str(api_properties.get("StageName", "Prod")),
        binary,
        tuple(routes),
        # SAM names the RestApi after the stack unless the template gives it a Name
        api_name=str(api_properties.get("Name", stack.stack_name)),
        responses=gateway_responses.parse(api_properties.get("GatewayResponses", {})),
        method_settings=tuple(api_properties.get("MethodSettings", [])),
    )


def is_binary(content_type: str, binary_media_types: tuple[str, ...]) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    for binary in binary_media_types:
        binary = binary.lower()
        if binary == "*/*" or binary == media:
            return True
        if binary.endswith("/*") and media.startswith(binary[:-1]):
            return True
    return False


def proxy_event(
    request_method: str,
    path: str,
    headers: list[tuple[str, str]],
    query: list[tuple[str, str]],
    body: bytes,
    route: ApiRoute,
    path_parameters: dict[str, str],
    spec: ApiSpec,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event."""
    multi_headers: dict[str, list[str]] = {}
    for key, value in headers:
        multi_headers.setdefault(key, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        multi_query.setdefault(key, []).append(value)
    content_type = next((value for key, value in headers if key.lower() == "content-type"), "")
    binary = bool(body) and is_binary(content_type, spec.binary_media_types)
    if binary:
        text_body: str | None = base64.b64encode(body).decode("ascii")
    else:
        text_body = body.decode("utf-8", "replace") if body else None
    now = time.time()
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": request_method,
        "headers": {key: values[-1] for key, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": request_method,
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{spec.stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": spec.stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": multi_headers.get("user-agent", [""])[-1]},
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": text_body,
        "isBase64Encoded": binary,
    }


def http_response(result: Any, spec: ApiSpec) -> Response:
    """The function's proxy response as HTTP (API Gateway's 502 for a malformed one)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return gateway_responses.answer(spec.responses, "DEFAULT_5XX", 502)
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    headers: dict[str, str] = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        if values:
            headers[str(key)] = ",".join(str(value) for value in values)
    headers.pop("content-length", None)
    headers.pop("Content-Length", None)
    return Response(content, status_code=int(result["statusCode"]), headers=headers)


class LocalApi:
    """Holds the current routes and functions (a redeploy swaps them) and builds the ASGI app."""

    # Where API Gateway's request metrics go (the cloud sets it; None publishes nothing).
    metrics: MetricBuffer | None = None

    def __init__(self, lambdas: LambdaRuntime) -> None:
        self.spec: ApiSpec | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.lambdas = lambdas
        self.throttle: gateway_responses.StageThrottle | None = None

    def configure(self, spec: ApiSpec, functions: dict[str, FunctionSpec]) -> None:
        self.spec, self.functions = spec, dict(functions)
        self.throttle = gateway_responses.stage_throttle(list(spec.method_settings))

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        response = await self.respond(request)
        spec, metrics = self.spec, self.metrics
        if spec is not None and metrics is not None:
            outcome = api_metrics.ApiRequestOutcome(
                status=response.status_code,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                timestamp=datetime.now(UTC),
            )
            for datum in api_metrics.request_metric_data(spec.api_name, spec.stage, outcome):
                metrics.add(api_metrics.NAMESPACE, datum)
        return response

    async def respond(self, request: Request) -> Response:
        spec = self.spec
        path = "/" + request.path_params.get("path", "")
        if spec is None:
            return JSONResponse({"message": "the stack is not deployed yet"}, status_code=503)
        if self.throttle is not None and not self.throttle.admit():
            return gateway_responses.answer(spec.responses, "THROTTLED")
        for route in spec.routes:
            parameters = route.match(path, request.method)
            if parameters is None:
                continue
            try:
                body = await read_limited_body(request, API_GATEWAY_PAYLOAD_LIMIT)
            except BodyTooLargeError:
                return content_length_exceeded(API_GATEWAY_PAYLOAD_LIMIT)
            event = proxy_event(
                request.method,
                path,
                list(request.headers.items()),
                list(request.query_params.multi_items()),
                body,
                route,
                parameters,
                spec,
                request.client.host if request.client else "127.0.0.1",
            )
            payload = json.dumps(event, separators=(",", ":")).encode("utf-8")  # the size Lambda counts
            if len(payload) > SYNC_REQUEST_LIMIT:
                return gateway_responses.answer(spec.responses, "REQUEST_TOO_LARGE")
            function = self.functions[route.function_logical_id]
            try:
                result = await anyio.to_thread.run_sync(self.lambdas.invoke, function.name, payload)
            except TooManyRequestsError:
                # Lambda throttles the synchronous invoke (429); API Gateway answers that with a 500.
                return gateway_responses.answer(spec.responses, "DEFAULT_5XX", 500)
            if result.function_error:
                return gateway_responses.answer(spec.responses, "DEFAULT_5XX", 502)
            return http_response(result.document(), spec)
        return gateway_responses.answer(spec.responses, "MISSING_AUTHENTICATION_TOKEN")

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return Starlette(routes=[HttpRoute("/{path:path}", self.handle, methods=methods)])
