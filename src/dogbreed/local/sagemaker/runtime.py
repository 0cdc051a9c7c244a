"""The sagemaker-runtime REST API on loopback: `POST /endpoints/{name}/invocations`.

boto3's `sagemaker-runtime` client works unchanged against it (`endpoint_url=backend.runtime_url` or
`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`). Errors use the rest-json error shape botocore parses into the
modeled exception classes (`ModelError` 424 with OriginalStatusCode/OriginalMessage/LogStreamArn,
`ValidationError` 400, `ServiceUnavailable` 503) and `ThrottlingException` 429 when overloaded. A body
over the 6 MB quota gets AWS's plain 413 "HTTP content length exceeded 6291456 bytes." while streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dogbreed.local.sagemaker.endpoints import EndpointService, InvokeError, Lease
from dogbreed.loopback import free_port
from dogbreed.streamed_body import BodyTooLargeError, content_length_exceeded, read_limited_body

_CONNECT_ATTEMPTS = 2
# InvokeEndpoint's Body quota (6 MB): refused at the front door, before any model server sees it.
INVOKE_ENDPOINT_PAYLOAD_LIMIT = 6 * 1024 * 1024
_FORWARDED_HEADERS = {
    "content-type": "Content-Type",
    "accept": "Accept",
    "x-amzn-sagemaker-custom-attributes": "X-Amzn-SageMaker-Custom-Attributes",
}


def error_response(error: InvokeError) -> JSONResponse:
    body: dict[str, Any] = {"ErrorCode": error.code, "message": error.message, **error.fields}
    return JSONResponse(
        body,
        status_code=error.status,
        headers={"x-amzn-ErrorType": error.code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def _unreachable(endpoints: EndpointService, lease: Lease, error: Exception) -> JSONResponse:
    endpoints.release(lease, 503, None)
    return error_response(InvokeError("ServiceUnavailable", 503, f"model server unreachable: {error}"))


def build_app(endpoints: EndpointService, timeout_seconds: float = 60.0) -> Starlette:
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
        injected = endpoints.injected_error(name)
        if injected is not None:
            return error_response(injected)
        for attempt in range(_CONNECT_ATTEMPTS):
            try:
                lease = endpoints.acquire(name, target)
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
                    endpoints.abandon(lease)
                    continue
                return _unreachable(endpoints, lease, error)
            except httpx.HTTPError as error:
                return _unreachable(endpoints, lease, error)
        else:  # pragma: no cover - the loop always breaks or returns
            raise AssertionError("unreachable")
        latency_us = (time.perf_counter() - lease.started) * 1e6
        endpoints.release(lease, upstream.status_code, latency_us)
        if upstream.status_code >= 400:
            return error_response(endpoints.model_error(lease, upstream.status_code, upstream.text))
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


class RuntimeServer:
    """uvicorn in a background thread on 127.0.0.1."""

    def __init__(self, endpoints: EndpointService, port: int = 0) -> None:
        self.port = port or free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                build_app(endpoints),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._serve, name="sagemaker-runtime", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the sagemaker-runtime server did not start on {self.url}")
            time.sleep(0.02)

    def _serve(self) -> None:
        with contextlib.suppress(SystemExit):
            asyncio.run(self._server.serve())

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None
