"""The ASGI app of one worker: the SageMaker container contract over the model's serving handler.

GET  /ping                   200 once the model is loaded (503 before)
POST /invocations            Content-Type / Accept as in inference.py; errors as
                             {"error": {"code", "message"}} with 400/406/413/415/422 (500 otherwise)
GET  /execution-parameters   batch-transform hints
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dogbreed.serving.batcher import DynamicBatcher
from dogbreed.serving.handler import Handler
from dogbreed.serving.settings import ServeSettings
from dogbreed.serving.supervisor_watch import stop_with_supervisor, supervisor_pid
from dogbreed.streamed_body import BodyTooLargeError, read_limited_body

logger = logging.getLogger("dogbreed.serving")

CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"
IO_THREADS = 8


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@dataclass
class WorkerState:
    handler: Handler
    batcher: DynamicBatcher
    io_pool: ThreadPoolExecutor


def create_app(settings: ServeSettings | None = None) -> Starlette:
    """The app for one worker (uvicorn factory: settings come from DOGBREED_SERVE_SETTINGS)."""
    config = settings or ServeSettings.from_env()
    # Worker processes start without logging configured (a no-op when it already is).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state: dict[str, WorkerState] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        supervisor = supervisor_pid()
        watch = stop_with_supervisor(supervisor) if supervisor is not None else None
        loop = asyncio.get_running_loop()
        # Loading takes seconds; uvicorn accepts connections only after this returns, so /ping
        # answers 200 exactly when the model is ready.
        handler = await loop.run_in_executor(None, Handler.load, config.model_path)
        batcher = DynamicBatcher(
            handler.predict_many,
            max_batch_size=config.max_batch_size,
            max_delay_s=config.max_batch_delay_ms / 1000,
            images_in=handler.images_in,
            prepare=handler.prepare,
            prepare_threads=config.preprocess_threads,
        )
        batcher.start()
        # The handler's read stage (validation; a fetch in handlers that fetch) runs beside the model.
        pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="fetch")
        state["worker"] = WorkerState(handler, batcher, pool)
        logger.info(
            "worker %d ready: %s via %s (batch <= %d, delay %.1f ms)",
            os.getpid(),
            config.model_dir,
            handler.script,
            config.max_batch_size,
            config.max_batch_delay_ms,
        )
        try:
            yield
        finally:
            if watch is not None:
                watch.set()
            # In-flight requests have finished (uvicorn drains them first); flush the queue, stop.
            await batcher.stop()
            pool.shutdown(wait=True)
            state.clear()
            logger.info(
                "worker %d stopped (%d batches, %d images)",
                os.getpid(),
                batcher.batches_run,
                batcher.images_run,
            )

    async def ping(_request: Request) -> Response:
        if "worker" not in state:
            return error_response(503, "model_not_loaded", "the model is still loading")
        return JSONResponse({"status": "ok"})

    async def execution_parameters(_request: Request) -> Response:
        return JSONResponse(
            {"MaxConcurrentTransforms": 1, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 6}
        )

    async def invocations(request: Request) -> Response:
        worker = state.get("worker")
        if worker is None:
            return error_response(503, "model_not_loaded", "the model is still loading")
        handler = worker.handler
        accept = request.headers.get("accept")
        try:
            handler.check_accept(accept)
            try:
                body = await read_limited_body(request, handler.max_body_bytes)
            except BodyTooLargeError:
                return error_response(
                    413, "body_too_large", f"the body is larger than {handler.max_body_bytes} bytes"
                )
            parsed = await asyncio.get_running_loop().run_in_executor(
                worker.io_pool,
                handler.read,
                body,
                request.headers.get("content-type"),
                request.headers.get(CUSTOM_ATTRIBUTES_HEADER),
            )
            prediction = await worker.batcher.submit(parsed)
            content, content_type = handler.render(prediction, accept)
        except handler.input_error as error:
            rejection = handler.render_rejection(error, accept)
            if rejection is not None:  # Batch Transform: one bad image must not fail the job
                return Response(rejection[0], media_type=rejection[1])
            status = int(getattr(error, "status", 400))
            code = str(getattr(error, "code", "invalid_input"))
            return error_response(status, code, str(getattr(error, "message", error)))
        except Exception:
            logger.exception("invocation failed")
            return error_response(500, "internal_error", "the model server failed to process the request")
        return Response(content, media_type=content_type)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/execution-parameters", execution_parameters, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
