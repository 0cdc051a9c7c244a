"""The local cloud in one process: moto in server mode with the pipeline shim, the local SageMaker and
Lambda runtime plugged in, the stack deployed, the event router, the local HTTP API, CloudWatch's
metrics and alarms, and the control API (the steps: `dogbreed.local.cloud.server`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx

from dogbreed.local.background import BackgroundServer
from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.alarm_evaluator import AlarmEvaluator, evaluation_interval
from dogbreed.local.cloud.api import LocalApi, api_spec
from dogbreed.local.cloud.control_api import control_app
from dogbreed.local.cloud.events import EventRouter
from dogbreed.local.cloud.faults import FaultRegistry
from dogbreed.local.cloud.moto_server import MotoServer
from dogbreed.local.cloud.service_metrics import ServiceMetrics, endpoint_instances
from dogbreed.local.cloud.stack import STACK_NAME, Deployment, deploy, load_stack
from dogbreed.local.iam.identity import RoleClients
from dogbreed.local.iam.recorder import AsgiCallRecorder, CallLog
from dogbreed.local.lambda_runtime.destinations import AwsDestinations
from dogbreed.local.lambda_runtime.loopback_urls import LOOPBACK_URLS_HOOK
from dogbreed.local.lambda_runtime.metrics import LambdaMetrics
from dogbreed.local.lambda_runtime.runtime import DEFAULT_MAX_WORKERS_PER_FUNCTION, LambdaRuntime
from dogbreed.local.metric_buffer import MetricBuffer

logger = logging.getLogger("dogbreed.local.cloud")
CHILDREN_FILE = "children.pids"
# The local cloud has no internet: torchvision's pretrained weights cannot be downloaded, so
# training jobs that do not say otherwise train from scratch (documented in docs/local-cloud.md).
OFFLINE_HYPERPARAMETERS = {"no-pretrained": "true"}
# Lambda waits 1 and 2 minutes before retrying a failed asynchronous invocation; here 0.6 and 1.2 s.
ASYNC_RETRY_SCALE = 0.01
# What the cloud injects into every function's workers besides its endpoints: no AWS config files
# of the machine's user (a function sees only its own credentials and region, as on Lambda).
FUNCTION_AWS_ISOLATION = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def function_aws_environment() -> dict[str, str]:
    """The AWS_ENDPOINT_URL* variables of this process, which point at the local cloud's services."""
    endpoints = {key: value for key, value in os.environ.items() if key.startswith("AWS_ENDPOINT_URL")}
    return {**endpoints, **FUNCTION_AWS_ISOLATION}


class LocalCloud:
    def __init__(
        self,
        *,
        state_dir: Path,
        aws_port: int,
        api_port: int,
        control_port: int,
        loopback_urls: bool = True,
        metric_period_scale: float = 1.0,
        async_retry_scale: float = ASYNC_RETRY_SCALE,
        lambda_workers: int = DEFAULT_MAX_WORKERS_PER_FUNCTION,
    ) -> None:
        from dogbreed.local import moto_shim
        from dogbreed.local.cloud import cloudwatch_fixes
        from dogbreed.local.sagemaker import registry_fixes
        from dogbreed.local.sagemaker.backend import LocalSageMaker

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
        registry_fixes.install()
        cloudwatch_fixes.install()
        self.faults = FaultRegistry()
        self.calls = CallLog()
        self.moto = MotoServer(host=cloud_state.HOST, port=aws_port, faults=self.faults, calls=self.calls)
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
        self.sagemaker = LocalSageMaker(
            state_dir / "sagemaker",
            default_hyperparameters=OFFLINE_HYPERPARAMETERS,
            role_clients=RoleClients(cloud_state.REGION),
            runtime_middleware=lambda app: AsgiCallRecorder(app, self.calls),
        )
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.sagemaker.runtime_url
        self.sagemaker.faults = self.faults
        self.moto.sagemaker_api.backend = self.sagemaker
        self.session = boto3.session.Session(region_name=cloud_state.REGION)
        self.lambdas = LambdaRuntime(
            aws_environment=function_aws_environment(),
            region=cloud_state.REGION,
            metrics=LambdaMetrics(self.session.client("cloudwatch").put_metric_data),
            destinations=AwsDestinations(self.session),
            worker_hooks=(LOOPBACK_URLS_HOOK,) if loopback_urls else (),
            async_backoff_scale=async_retry_scale,
            max_workers_per_function=lambda_workers,
        )
        moto_shim.install(self.sagemaker, lambdas=self.lambdas)
        self.router = EventRouter(self.session, lambdas=self.lambdas)
        self.api = LocalApi(self.lambdas)
        self.deployment: Deployment | None = None
        self._deploy_lock = threading.Lock()
        self._queue_names: list[str] = []  # the stack's queues (not the event router's own)
        self._start_cloudwatch(metric_period_scale)
        self.router.start()
        self.api_server = BackgroundServer(self.api.app(), api_port, name="local-http-api")
        self.api_server.start()
        self.control_server = BackgroundServer(control_app(self), control_port, name="control")
        self.control_server.start()
        self._stop = threading.Event()
        self._children_thread = threading.Thread(target=self._record_children, daemon=True)
        self._children_thread.start()

    def _start_cloudwatch(self, period_scale: float) -> None:
        """The metrics the services publish on their own and the alarm evaluation (scaled periods)."""
        cloudwatch = self.session.client("cloudwatch")
        self.metrics = MetricBuffer(cloudwatch.put_metric_data)
        self.api.metrics = self.metrics
        self.service_metrics = ServiceMetrics(
            self.session.client("sqs"),
            self.metrics,
            queue_names=self._stack_queue_names,
            instances=lambda: endpoint_instances(self.sagemaker.endpoints.fleets()),
        )
        self.service_metrics.start(interval_seconds=max(0.5, 30 * period_scale))  # SQS, SageMaker: 1/min
        self.alarms = AlarmEvaluator(cloudwatch, period_scale=period_scale)
        self.alarms.start(interval_seconds=evaluation_interval(period_scale))

    def _stack_queue_names(self) -> list[str]:
        return list(self._queue_names)

    # --- deploy and status ----------------------------------------------------------------
    def deploy(self, parameters: dict[str, str] | None = None) -> Deployment:
        with self._deploy_lock:
            stack = load_stack(parameters, STACK_NAME)
            queues = [lid for lid, r in stack.resources.items() if r["Type"] == "AWS::SQS::Queue"]
            self._queue_names = [stack.physical_name(lid) for lid in queues]
            deployment = deploy(self.session, stack)
            self.lambdas.configure(deployment.functions.values())
            self.router.configure(deployment)
            self.api.configure(api_spec(stack), deployment.functions)
            self.deployment = deployment
            self.write_state()
            return deployment

    def undeploy(self) -> None:
        """Stop serving the stack (before `dogbreed teardown --local` deletes its resources): no event
        routes, no API routes, no queues to report on."""
        with self._deploy_lock:
            self.router.configure(Deployment(stack_name=STACK_NAME, parameters={}))
            self.api.spec = None
            self._queue_names = []
            self.deployment = None
            self.write_state()

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
            "lambda": self.lambdas.status(),
            "faults": [fault.to_dict() for fault in self.faults.faults()],
        }

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
            self.alarms.stop,
            self.service_metrics.stop,
            self.metrics.close,
            self.router.stop,
            self.lambdas.close,
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
