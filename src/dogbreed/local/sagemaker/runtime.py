"""InvokeEndpoint: which instance answers a request, and the sagemaker-runtime REST API on loopback
(`POST /endpoints/{name}/invocations`) that forwards it there.

`Router` takes a lease on one instance (a weighted draw between variants, round robin with bounded
concurrency within one) under the lock that swaps fleets, so a drained fleet never receives a new
request. boto3's `sagemaker-runtime` client works unchanged against the API (`endpoint_url=
backend.runtime_url`, `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`, or `AWS_ENDPOINT_URL` in the local cloud,
through `api`). Errors use the rest-json error shape botocore parses into the modeled exception classes
(`ModelError` 424 with OriginalStatusCode/OriginalMessage/LogStreamArn, `ValidationError` 400,
`ServiceUnavailable` 503) and `ThrottlingException` 429 when overloaded. A body over the 6 MB quota
gets AWS's plain 413 "HTTP content length exceeded 6291456 bytes." while streaming. A serverless
variant with no warm worker starts one before the request is forwarded (the cold start), and throttles
beyond its MaxConcurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dogbreed.local.background import BackgroundServer
from dogbreed.local.sagemaker._aws import ACCOUNT_ID
from dogbreed.local.sagemaker.data_capture import CaptureWriter, Invocation
from dogbreed.local.sagemaker.endpoints import EndpointService
from dogbreed.local.sagemaker.fleet import FleetError, Instance, Variant
from dogbreed.local.sagemaker.serverless import cold_start
from dogbreed.streamed_body import BodyTooLargeError, content_length_exceeded, read_limited_body

if TYPE_CHECKING:
    from dogbreed.local.cloud.faults import FaultRegistry

logger = logging.getLogger(__name__)
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints"
_CONNECT_ATTEMPTS = 2
# InvokeEndpoint's Body quota (6 MB): refused at the front door, before any model server sees it.
INVOKE_ENDPOINT_PAYLOAD_LIMIT = 6 * 1024 * 1024
_FORWARDED_HEADERS = {
    "content-type": "Content-Type",
    "accept": "Accept",
    "x-amzn-sagemaker-custom-attributes": "X-Amzn-SageMaker-Custom-Attributes",
}


class InvokeError(Exception):
    """A sagemaker-runtime error: `code` is the error type botocore maps to an exception class."""

    def __init__(self, code: str, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.fields = fields


class ColdStartNeeded(Exception):
    """A serverless variant has no warm worker: start one, then acquire again."""

    def __init__(self, variant: Variant) -> None:
        super().__init__(variant.name)
        self.variant = variant


@dataclass
class Lease:
    endpoint: str
    variant: Variant
    instance: Instance
    started: float = field(default_factory=time.perf_counter)


class Router:
    def __init__(self, endpoints: EndpointService, *, region: str, max_concurrency: int = 8) -> None:
        self._endpoints = endpoints
        self._region = region
        self.max_concurrency = max_concurrency  # concurrent requests per instance before 429
        # Set by the local cloud: injected InvokeEndpoint errors.
        self.faults: FaultRegistry | None = None
        # Set by the backend: the endpoint configs' DataCaptureConfig.
        self.capture: CaptureWriter | None = None

    def captured(self, lease: Lease, request: Invocation) -> None:
        """Hand a successful invocation to data capture (a capture failure never fails the call)."""
        if self.capture is None:
            return
        try:
            self.capture.record(request)
        except Exception:
            logger.exception("data capture of an invocation of %s failed", lease.endpoint)

    def acquire(self, endpoint_name: str, target_variant: str | None = None) -> Lease:
        with self._endpoints.lock:
            endpoint = self._endpoints.find(endpoint_name)
            if endpoint is None or not endpoint.variants:
                raise InvokeError(
                    "ValidationError", 400, f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found."
                )
            if target_variant is not None:
                variant = endpoint.variants.get(target_variant)
                if variant is None:
                    raise InvokeError(
                        "ValidationError",
                        400,
                        f"The variant {target_variant} does not exist for endpoint {endpoint_name}.",
                    )
            else:
                # During a blue/green update, the new fleet's share of traffic; then the variants' weights.
                pending = endpoint.pending
                variants = (
                    pending.variants if pending is not None and pending.routes_to_new() else endpoint.variants
                )
                names = list(variants)
                weights = [variants[name].weight for name in names]
                # Traffic split between variants, as SageMaker does: a weighted draw, nothing secret.
                chosen = random.choices(names, weights=weights)[0] if sum(weights) > 0 else names[0]  # noqa: S311  # nosec B311
                variant = variants[chosen]
            serverless = variant.serverless
            if serverless is not None and not variant.fleet.instances:
                raise ColdStartNeeded(variant)
            if not variant.fleet.instances:
                raise InvokeError("ServiceUnavailable", 503, "No instance of the variant is available.")
            limit = serverless.max_concurrency if serverless is not None else self.max_concurrency
            instance = variant.fleet.pick(limit)
            if instance is None:
                variant.metrics.record(429, None)
                raise InvokeError(
                    "ThrottlingException",
                    429,
                    f"Endpoint {endpoint_name} is overloaded: too many concurrent requests.",
                )
            instance.inflight += 1
            instance.served += 1
            if serverless is not None:
                serverless.last_used = time.monotonic()
            return Lease(endpoint=endpoint_name, variant=variant, instance=instance)

    async def acquire_warm(self, endpoint_name: str, target_variant: str | None = None) -> Lease:
        """`acquire`, starting a serverless variant's worker first when it has none (a cold start)."""
        while True:
            try:
                return self.acquire(endpoint_name, target_variant)
            except ColdStartNeeded as needed:
                try:
                    await asyncio.to_thread(cold_start, self._endpoints, endpoint_name, needed.variant)
                except FleetError as error:
                    raise InvokeError(
                        "ServiceUnavailable", 503, f"The serverless worker did not start: {error}"
                    ) from error

    def abandon(self, lease: Lease) -> None:
        """Give a lease back without counting an invocation (the request never reached the model)."""
        with self._endpoints.lock:
            lease.instance.inflight -= 1

    def release(self, lease: Lease, status: int, latency_us: float | None) -> None:
        with self._endpoints.lock:
            lease.instance.inflight -= 1
            if lease.variant.serverless is not None:
                lease.variant.serverless.last_used = time.monotonic()
        lease.variant.metrics.record(status, latency_us)

    def injected_error(self, endpoint_name: str) -> InvokeError | None:
        """The error of an active endpoint fault for this endpoint (the local cloud's fault injection)."""
        fault = self.faults.take_named("endpoint", endpoint_name) if self.faults else None
        if fault is None:
            return None
        fields: dict[str, Any] = {}
        if fault.error == "ModelError":
            fields = {"OriginalStatusCode": 500, "OriginalMessage": fault.message}
        return InvokeError(fault.error, fault.status, fault.message, **fields)

    def model_error(self, lease: Lease, status: int, message: str) -> InvokeError:
        kind = "client" if status < 500 else "server"
        log_stream = (
            f"arn:aws:logs:{self._region}:{ACCOUNT_ID}:log-group:{ENDPOINT_LOG_GROUP}/{lease.endpoint}"
        )
        return InvokeError(
            "ModelError",
            424,
            f'Received {kind} error ({status}) from primary with message "{message}". See '
            f"{lease.instance.log_path} for more information.",
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=log_stream,
        )


# ----------------------------------------------------------------------------- HTTP API


def error_response(error: InvokeError) -> JSONResponse:
    body: dict[str, Any] = {"ErrorCode": error.code, "message": error.message, **error.fields}
    return JSONResponse(
        body,
        status_code=error.status,
        headers={"x-amzn-ErrorType": error.code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def _unreachable(router: Router, lease: Lease, error: Exception) -> JSONResponse:
    router.release(lease, 503, None)
    return error_response(InvokeError("ServiceUnavailable", 503, f"model server unreachable: {error}"))


def build_app(router: Router, timeout_seconds: float = 60.0) -> Starlette:
    state: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        if "client" not in state:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            state["client"] = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout_seconds, connect=5.0), limits=limits
            )
        return state["client"]

    async def invoke(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            body = await read_limited_body(request, INVOKE_ENDPOINT_PAYLOAD_LIMIT)
        except BodyTooLargeError:
            return content_length_exceeded(INVOKE_ENDPOINT_PAYLOAD_LIMIT)
        headers = {
            out: request.headers[key] for key, out in _FORWARDED_HEADERS.items() if key in request.headers
        }
        target = request.headers.get("x-amzn-sagemaker-target-variant")
        injected = router.injected_error(name)
        if injected is not None:
            return error_response(injected)
        for attempt in range(_CONNECT_ATTEMPTS):
            try:
                lease = await router.acquire_warm(name, target)
            except InvokeError as error:
                return error_response(error)
            try:
                upstream = await client().post(
                    f"{lease.instance.url}/invocations", content=body, headers=headers
                )
                break
            except httpx.ConnectError as error:
                # Nothing reached the model (e.g. an instance that just died): another instance may answer.
                if attempt + 1 < _CONNECT_ATTEMPTS:
                    router.abandon(lease)
                    continue
                return _unreachable(router, lease, error)
            except httpx.HTTPError as error:
                return _unreachable(router, lease, error)
        else:  # pragma: no cover - the loop always breaks or returns
            raise AssertionError("unreachable")
        latency_us = (time.perf_counter() - lease.started) * 1e6
        router.release(lease, upstream.status_code, latency_us)
        if upstream.status_code >= 400:
            return error_response(router.model_error(lease, upstream.status_code, upstream.text))
        router.captured(
            lease,
            Invocation(
                endpoint=name,
                variant=lease.variant.name,
                model_name=lease.variant.model_name,
                request_body=body,
                request_content_type=request.headers.get("content-type", "application/octet-stream"),
                response_body=upstream.content,
                response_content_type=upstream.headers.get("content-type", "application/json"),
            ),
        )
        out_headers = {"x-Amzn-Invoked-Production-Variant": lease.variant.name}
        if "x-amzn-sagemaker-custom-attributes" in upstream.headers:
            out_headers["X-Amzn-SageMaker-Custom-Attributes"] = upstream.headers[
                "x-amzn-sagemaker-custom-attributes"
            ]
        return Response(
            upstream.content,
            status_code=200,
            media_type=upstream.headers.get("content-type", "application/json"),
            headers=out_headers,
        )

    async def ping(_: Request) -> Response:
        return Response(json.dumps({"status": "ok"}), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if "client" in state:
            await state.pop("client").aclose()

    return Starlette(
        routes=[
            Route("/endpoints/{name}/invocations", invoke, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def runtime_server(
    router: Router, port: int = 0, middleware: Callable[[Any], Any] | None = None
) -> BackgroundServer:
    """The runtime API on `port`; `middleware` wraps the app (the local cloud's call recorder)."""
    app = build_app(router)
    return BackgroundServer(
        middleware(app) if middleware else app, port, name="sagemaker-runtime", lifespan="on"
    )
