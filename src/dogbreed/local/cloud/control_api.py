"""The local cloud's loopback control API: status, deploy and undeploy of the stack, the injected
faults, and the IAM calls recorded (what `dogbreed local ...` asks the running cloud)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dogbreed.local.cloud.faults import FaultRegistry, build_fault
from dogbreed.local.cloud.stack import STACK_NAME, Deployment
from dogbreed.local.iam.recorder import CallLog

logger = logging.getLogger("dogbreed.local.cloud")


class ControlledCloud(Protocol):
    """What the control API needs of the cloud it controls."""

    faults: FaultRegistry
    calls: CallLog

    def status(self) -> dict[str, Any]: ...

    def deploy(self, parameters: dict[str, str] | None = None) -> Deployment: ...

    def undeploy(self) -> None: ...


def control_app(cloud: ControlledCloud) -> Starlette:
    """The loopback control API of `dogbreed local status|deploy|undeploy|faults|iam-report`."""

    async def status(_: Request) -> JSONResponse:
        import anyio.to_thread

        return JSONResponse(await anyio.to_thread.run_sync(cloud.status))

    async def deploy_route(request: Request) -> JSONResponse:
        import anyio.to_thread

        body = await request.json() if await request.body() else {}
        try:
            deployment = await anyio.to_thread.run_sync(cloud.deploy, body.get("parameters") or {})
        except Exception as exc:  # the CLI shows the reason; the cloud keeps running
            logger.exception("deploy failed")
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
        return JSONResponse(
            {"created": deployment.created, "updated": deployment.updated, "outputs": deployment.outputs}
        )

    async def list_faults(_: Request) -> JSONResponse:
        return JSONResponse({"faults": [fault.to_dict() for fault in cloud.faults.faults()]})

    async def add_fault(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            fault = cloud.faults.add(build_fault(body))
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"fault": fault.to_dict()}, status_code=201)

    async def clear_faults(request: Request) -> JSONResponse:
        fault_id = request.path_params.get("fault_id")
        removed = cloud.faults.clear(None if fault_id is None else [fault_id])
        if fault_id is not None and not removed:
            return JSONResponse({"error": f"no fault {fault_id}"}, status_code=404)
        return JSONResponse({"cleared": [fault.to_dict() for fault in removed]})

    async def undeploy_route(_: Request) -> JSONResponse:
        import anyio.to_thread

        await anyio.to_thread.run_sync(cloud.undeploy)
        return JSONResponse({"undeployed": STACK_NAME})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def iam_calls(_: Request) -> JSONResponse:
        return JSONResponse(cloud.calls.to_json())

    return Starlette(
        routes=[
            Route("/status", status, methods=["GET"]),
            Route("/deploy", deploy_route, methods=["POST"]),
            Route("/undeploy", undeploy_route, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/iam/calls", iam_calls, methods=["GET"]),
            Route("/faults", list_faults, methods=["GET"]),
            Route("/faults", add_fault, methods=["POST"]),
            Route("/faults", clear_faults, methods=["DELETE"]),
            Route("/faults/{fault_id}", clear_faults, methods=["DELETE"]),
        ]
    )
