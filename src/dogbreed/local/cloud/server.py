"""The local cloud process (`python -m dogbreed.local.cloud.server`, started by `dogbreed local up`).

One process so that moto's backends, the pipeline shim and the in-process functions share memory:

1. the pipeline shim (`dogbreed.local.moto_shim`) is installed, then moto runs in server mode on
   127.0.0.1:<aws-port> with its Step Functions interpreter enabled through moto's own
   `/moto-api/config` endpoint (`stepfunctions.execute_state_machine`);
2. the local SageMaker backend (training/tuning jobs and endpoint fleets as real processes, the
   sagemaker-runtime API, auto scaling) is plugged into the shim;
3. template.yaml is deployed (`stack.deploy`), the event router and the local HTTP API (port
   <api-port>) start, and a loopback control API answers `dogbreed local status|deploy`;
4. `<state-dir>/cloud.json` is written once everything answers; SIGTERM/SIGINT stops it all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.api import LocalApi, api_spec
from dogbreed.local.cloud.events import EventRouter
from dogbreed.local.cloud.faults import AwsFaultMiddleware, FaultRegistry, build_fault
from dogbreed.local.cloud.stack import STACK_NAME, Deployment, deploy, load_stack

logger = logging.getLogger("dogbreed.local.cloud")
CHILDREN_FILE = "children.pids"
# The local cloud has no internet: torchvision's pretrained weights cannot be downloaded, so
# training jobs that do not say otherwise train from scratch (documented in docs/local-cloud.md).
OFFLINE_HYPERPARAMETERS = {"no-pretrained": "true"}


class OfflineSageMaker:
    """The local SageMaker backend with the offline hyperparameter defaults added to job requests."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        request["HyperParameters"] = {**OFFLINE_HYPERPARAMETERS, **request.get("HyperParameters", {})}
        result: dict[str, Any] = self._backend.create_training_job(**request)
        return result

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        definition = request.get("TrainingJobDefinition", {})
        definition["StaticHyperParameters"] = {
            **OFFLINE_HYPERPARAMETERS,
            **definition.get("StaticHyperParameters", {}),
        }
        result: dict[str, Any] = self._backend.create_hyper_parameter_tuning_job(**request)
        return result


class UvicornThread:
    def __init__(self, app: Any, port: int, name: str) -> None:
        self.port = port
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=cloud_state.HOST, port=port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        with contextlib.suppress(SystemExit):
            asyncio.run(self._server.serve())

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self._thread.name} did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class MotoServer:
    """moto's server app (what `ThreadedMotoServer` runs) behind the AWS fault middleware.

    Built here rather than through ThreadedMotoServer so the app can be wrapped; the moto pieces it
    imports are pinned with the moto version and `test_aws_fault_reaches_a_plain_boto3_call` fails if
    requests stop passing through the middleware.
    """

    def __init__(self, *, host: str, port: int, faults: FaultRegistry) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = AwsFaultMiddleware(DomainDispatcherApplication(create_backend_app), faults)
        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


class LocalCloud:
    def __init__(
        self, *, state_dir: Path, aws_port: int, api_port: int, control_port: int, loopback_urls: bool = True
    ) -> None:
        from dogbreed.local import moto_shim
        from dogbreed.local.sagemaker.backend import LocalSageMaker
        from dogbreed.loopback import free_port

        self.state_dir = state_dir
        self.loopback_urls = loopback_urls
        self.aws_url = f"http://{cloud_state.HOST}:{aws_port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_url,
                "AWS_DEFAULT_REGION": cloud_state.REGION,
                "AWS_REGION": cloud_state.REGION,
                **cloud_state.DUMMY_CREDENTIALS,
            }
        )
        moto_shim.install(None)
        self.faults = FaultRegistry()
        self.moto = MotoServer(host=cloud_state.HOST, port=aws_port, faults=self.faults)
        self.moto.start()
        self.aws_port = self.moto.port
        self.aws_url = f"http://{cloud_state.HOST}:{self.aws_port}"
        os.environ["AWS_ENDPOINT_URL"] = self.aws_url
        # moto's Step Functions interpreter calls AWS services (dynamodb:putItem, aws-sdk:*) through
        # a boto3 client on http://localhost:$MOTO_PORT: this server.
        os.environ["MOTO_PORT"] = str(self.aws_port)
        httpx.post(
            f"{self.aws_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}
        ).raise_for_status()
        self.sagemaker = LocalSageMaker(state_dir / "sagemaker", runtime_port=free_port())
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.sagemaker.runtime_url
        self.sagemaker.endpoints.faults = self.faults
        self.sagemaker.training.faults = self.faults
        moto_shim.install(OfflineSageMaker(self.sagemaker))
        self.session = boto3.session.Session(region_name=cloud_state.REGION)
        self.router = EventRouter(self.session)
        self.api = LocalApi(self.router.concurrency)  # one account: both share the concurrency pools
        self.deployment: Deployment | None = None
        self._deploy_lock = threading.Lock()
        self.router.start()
        self.api_server = UvicornThread(self.api.app(), api_port, "local-http-api")
        self.api_server.start()
        self.control_server = UvicornThread(self._control_app(), control_port or free_port(), "control")
        self.control_server.start()
        self._stop = threading.Event()
        self._children_thread = threading.Thread(target=self._record_children, daemon=True)
        self._children_thread.start()

    # --- deploy and status ----------------------------------------------------------------
    def deploy(self, parameters: dict[str, str] | None = None) -> Deployment:
        with self._deploy_lock:
            stack = load_stack(parameters, STACK_NAME)
            deployment = deploy(self.session, stack, loopback_urls=self.loopback_urls)
            self.router.configure(deployment)
            self.api.configure(api_spec(stack), deployment.functions)
            self.deployment = deployment
            self.write_state()
            return deployment

    def state(self) -> cloud_state.CloudState:
        deployment = self.deployment
        return cloud_state.CloudState(
            pid=os.getpid(),
            aws_port=self.aws_port,
            api_port=self.api_server.port,
            runtime_url=self.sagemaker.runtime_url,
            control_url=f"http://{cloud_state.HOST}:{self.control_server.port}",
            stack_name=STACK_NAME,
            outputs=dict(deployment.outputs) if deployment else {},
            parameters=dict(deployment.parameters) if deployment else {},
        )

    def write_state(self) -> None:
        self.state().write(self.state_dir)

    def status(self) -> dict[str, Any]:
        deployment = self.deployment
        executions: list[dict[str, Any]] = []
        if deployment:
            sfn = self.session.client("stepfunctions")
            for arn in deployment.state_machine_arns.values():
                for item in sfn.list_executions(stateMachineArn=arn, maxResults=10)["executions"]:
                    executions.append(
                        {
                            "name": item.get("name") or item["executionArn"].rsplit(":", 1)[-1],
                            "status": item["status"],
                            "started": item["startDate"].isoformat(),
                            "stopped": item["stopDate"].isoformat() if item.get("stopDate") else None,
                        }
                    )
        return {
            "state": json.loads(json.dumps(vars(self.state()))),
            "resources": dict(deployment.physical_names) if deployment else {},
            "functions": sorted(f.name for f in deployment.functions.values()) if deployment else [],
            "rules": [route.rule_name for route in deployment.routes] if deployment else [],
            "sagemaker": json.loads(json.dumps(self.sagemaker.status(), default=str)),
            "executions": executions,
            "deliveries": self.router.status(),
            "faults": [fault.to_dict() for fault in self.faults.faults()],
        }

    def _control_app(self) -> Starlette:
        async def status(_: Request) -> JSONResponse:
            import anyio.to_thread

            return JSONResponse(await anyio.to_thread.run_sync(self.status))

        async def deploy_route(request: Request) -> JSONResponse:
            import anyio.to_thread

            body = await request.json() if await request.body() else {}
            try:
                deployment = await anyio.to_thread.run_sync(self.deploy, body.get("parameters") or {})
            except Exception as exc:  # the CLI shows the reason; the cloud keeps running
                logger.exception("deploy failed")
                return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
            return JSONResponse(
                {"created": deployment.created, "updated": deployment.updated, "outputs": deployment.outputs}
            )

        async def sagemaker_call(request: Request) -> JSONResponse:
            """The local SageMaker backend's boto3-shaped operations, for the CLI, demo and tests."""
            import anyio.to_thread
            from botocore.exceptions import ClientError

            from dogbreed.local.sagemaker.backend import OPERATIONS

            operation = request.path_params["operation"]
            if operation not in OPERATIONS or operation == "invoke_endpoint":
                return JSONResponse({"error": f"unknown operation {operation}"}, status_code=404)
            body = await request.json() if await request.body() else {}
            method = getattr(self.sagemaker, operation)
            try:
                result = await anyio.to_thread.run_sync(lambda: method(**body))
            except ClientError as error:
                return JSONResponse({"error": error.response.get("Error", {})}, status_code=400)
            return JSONResponse(json.loads(json.dumps(result, default=str)))

        async def list_faults(_: Request) -> JSONResponse:
            return JSONResponse({"faults": [fault.to_dict() for fault in self.faults.faults()]})

        async def add_fault(request: Request) -> JSONResponse:
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                fault = self.faults.add(build_fault(body))
            except ValueError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            return JSONResponse({"fault": fault.to_dict()}, status_code=201)

        async def clear_faults(request: Request) -> JSONResponse:
            fault_id = request.path_params.get("fault_id")
            removed = self.faults.clear(None if fault_id is None else [fault_id])
            if fault_id is not None and not removed:
                return JSONResponse({"error": f"no fault {fault_id}"}, status_code=404)
            return JSONResponse({"cleared": [fault.to_dict() for fault in removed]})

        async def health(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        return Starlette(
            routes=[
                Route("/status", status, methods=["GET"]),
                Route("/deploy", deploy_route, methods=["POST"]),
                Route("/health", health, methods=["GET"]),
                Route("/sagemaker/{operation}", sagemaker_call, methods=["POST"]),
                Route("/faults", list_faults, methods=["GET"]),
                Route("/faults", add_fault, methods=["POST"]),
                Route("/faults", clear_faults, methods=["DELETE"]),
                Route("/faults/{fault_id}", clear_faults, methods=["DELETE"]),
            ]
        )

    def _record_children(self) -> None:
        path = self.state_dir / CHILDREN_FILE
        while not self._stop.wait(1.0):
            with contextlib.suppress(Exception):
                pids = self.sagemaker.processes.alive_pids()
                path.write_text("\n".join(str(pid) for pid in pids), encoding="utf-8")

    def shutdown(self) -> None:
        self._stop.set()
        for step in (
            self.api_server.stop,
            self.control_server.stop,
            self.router.stop,
            self.sagemaker.shutdown,
            self.moto.stop,
        ):
            started = time.monotonic()
            try:
                step()
                logger.info(
                    "shutdown: %s took %.1f s",
                    getattr(step, "__qualname__", step),
                    time.monotonic() - started,
                )
            except Exception:
                logger.exception("shutdown step %s failed", getattr(step, "__qualname__", step))
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / cloud_state.STATE_FILE).unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / CHILDREN_FILE).unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The dogbreed local cloud process.")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--aws-port", type=int, default=cloud_state.DEFAULT_AWS_PORT)
    parser.add_argument("--api-port", type=int, default=cloud_state.DEFAULT_API_PORT)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--parameter-overrides", default="", help="Key=Value ... for the local stack")
    parser.add_argument(
        "--no-loopback-urls",
        dest="loopback_urls",
        action="store_false",
        help="give the functions the production URL policy (no http://127.0.0.1 image URLs)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("werkzeug", "botocore", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cloud = LocalCloud(
        state_dir=state_dir,
        aws_port=args.aws_port,
        api_port=args.api_port,
        control_port=args.control_port,
        loopback_urls=args.loopback_urls,
    )
    try:
        overrides = dict(item.split("=", 1) for item in args.parameter_overrides.split() if "=" in item)
        cloud.deploy(overrides)
        logger.info("local cloud up: AWS %s, API %s", cloud.aws_url, cloud.state().api_url)
        stop.wait()
    finally:
        cloud.shutdown()
        logging.shutdown()
        # Every server, job and fleet is stopped; worker threads that libraries leave behind (thread
        # pools, moto's execution workers) must not keep the stopped cloud alive.
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
