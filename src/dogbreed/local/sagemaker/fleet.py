"""The model-server processes behind an endpoint: a production variant is a *fleet* of `dogbreed serve`
processes (the SageMaker container contract: GET /ping, POST /invocations) on free loopback ports, over
the extracted `model.tar.gz`. Which instance answers a request is the router's business; the fleet's
instance list is guarded by the endpoint service's lock."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from dogbreed.local.sagemaker.endpoint_metrics import VariantMetrics
from dogbreed.local.sagemaker.processes import ProcessRegistry
from dogbreed.local.sagemaker.serverless import ServerlessState, is_serverless
from dogbreed.loopback import free_port

if TYPE_CHECKING:
    from dogbreed.local.sagemaker.models import ModelStore

ServeCommand = Callable[[Path, int], list[str]]
CONTAINER_MODEL_DIR = "/opt/ml/model"


def default_serve_command(model_dir: Path, port: int) -> list[str]:
    return [
        sys.executable, "-m", "dogbreed", "serve",
        "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip


def crashing_serve_command(message: str) -> ServeCommand:
    """A model server that exits at once with `message`: the new fleet never passes its ping check."""

    def command(_model_dir: Path, _port: int) -> list[str]:
        return [sys.executable, "-c", f"import sys; sys.exit({message!r})"]

    return command


class FleetError(Exception):
    pass


@dataclass
class Instance:
    index: int
    port: int
    proc: Any
    log_path: Path
    inflight: int = 0
    served: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "pid": self.proc.pid, "inflight": self.inflight, "served": self.served}


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


class Fleet:
    """The model-server processes of one variant of one deployment."""

    def __init__(
        self,
        *,
        label: str,
        model_dir: Path,
        environment: dict[str, str],
        processes: ProcessRegistry,
        serve_command: ServeCommand,
        log_dir: Path,
        startup_timeout: float,
    ) -> None:
        self.label = label
        self.model_dir = model_dir
        self.environment = environment
        self._processes = processes
        self._serve_command = serve_command
        self.log_dir = log_dir
        self._startup_timeout = startup_timeout
        self.instances: list[Instance] = []  # in rotation; guarded by the EndpointService lock
        self._counter = itertools.count(1)
        self._rr = itertools.count()

    def start_instance(self) -> Instance:
        """Start one server and wait for /ping; raises FleetError with the reason on failure."""
        index = next(self._counter)
        port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"instance-{index}.log"
        env = dict(os.environ)
        # The container sees the model at /opt/ml/model; here it is the extracted archive.
        env.update(
            {
                key: value.replace(CONTAINER_MODEL_DIR, str(self.model_dir))
                for key, value in self.environment.items()
            }
        )
        env["SM_MODEL_DIR"] = str(self.model_dir)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONUNBUFFERED"] = "1"
        with log_path.open("w") as log:
            proc = self._processes.spawn(
                self._serve_command(self.model_dir, port), env=env, cwd=self.model_dir, stdout=log, stderr=log
            )
        instance = Instance(index=index, port=port, proc=proc, log_path=log_path)
        deadline = time.monotonic() + self._startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    self._processes.reap_group(proc)
                    raise FleetError(
                        f"the model server exited with code {proc.returncode}: {_tail(log_path)}"
                    )
                try:
                    if client.get(f"{instance.url}/ping").status_code == 200:
                        return instance
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self._processes.terminate(proc, 2.0)
        raise FleetError(f"no answer to /ping within {self._startup_timeout:.0f} s: {_tail(log_path)}")

    def launch(self, count: int) -> None:
        """Start `count` instances at once; all or none (the started ones stop when one fails)."""
        started: list[Instance] = []
        errors: list[str] = []
        lock = threading.Lock()

        def one() -> None:
            try:
                instance = self.start_instance()
            except FleetError as error:
                with lock:
                    errors.append(str(error))
                return
            with lock:
                started.append(instance)

        threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            for instance in started:
                self.stop_instance(instance)
            raise FleetError(errors[0])
        self.instances = sorted(started, key=lambda instance: instance.index)

    def pick(self, max_concurrency: int) -> Instance | None:
        """Round robin over instances with spare capacity (caller holds the routing lock)."""
        if not self.instances:
            return None
        start = next(self._rr)
        for offset in range(len(self.instances)):
            instance = self.instances[(start + offset) % len(self.instances)]
            if instance.inflight < max_concurrency:
                return instance
        return None

    def stop_instance(
        self, instance: Instance, drain_timeout: float = 0.0, is_idle: Callable[[], bool] | None = None
    ) -> None:
        deadline = time.monotonic() + drain_timeout
        while is_idle is not None and not is_idle() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._processes.terminate(instance.proc, 3.0)

    def stop_all(self) -> None:
        for instance in list(self.instances):
            self.stop_instance(instance)


@dataclass
class Variant:
    """A production variant of a deployment: its fleet, traffic weight and invocation metrics."""

    name: str
    model_name: str
    instance_type: str
    weight: float
    fleet: Fleet
    desired_count: int
    metrics: VariantMetrics
    image: str = ""
    serverless: ServerlessState | None = None  # a ServerlessConfig instead of instances

    def summary(self) -> dict[str, Any]:
        """DescribeEndpoint's ProductionVariantSummary: instance counts, or the serverless config."""
        summary: dict[str, Any] = {
            "VariantName": self.name,
            "DeployedImages": [{"SpecifiedImage": self.image, "ResolvedImage": self.image}]
            if self.image
            else [],
            "CurrentWeight": self.weight,
            "DesiredWeight": self.weight,
        }
        if self.serverless is not None:
            config = self.serverless.config()
            return {**summary, "CurrentServerlessConfig": config, "DesiredServerlessConfig": dict(config)}
        return {
            **summary,
            "CurrentInstanceCount": len(self.fleet.instances),
            "DesiredInstanceCount": self.desired_count,
        }

    def status(self) -> dict[str, Any]:
        """The emulator's view (processes and counters), beyond what DescribeEndpoint shows."""
        return {
            "VariantName": self.name,
            "ModelName": self.model_name,
            "CurrentInstanceCount": len(self.fleet.instances),
            "DesiredInstanceCount": self.desired_count,
            "Instances": [instance.status() for instance in self.fleet.instances],
            "Invocations": self.metrics.total_invocations,
            **({"Serverless": self.serverless.status()} if self.serverless else {}),
        }


def build_variants(
    specs: list[dict[str, Any]],
    *,
    models: ModelStore,
    processes: ProcessRegistry,
    serve_command: ServeCommand,
    label: str,
    log_root: Path,
    startup_timeout: float,
) -> dict[str, Variant]:
    """A started, healthy fleet for every production variant spec (all or none); `label` names each
    fleet, with `{variant}` for the variant's name. FleetError says why, in SageMaker's words."""
    variants: dict[str, Variant] = {}
    try:
        for spec in specs:
            try:
                model = models.model(spec["ModelName"], "CreateEndpoint")
            except Exception as error:
                raise FleetError(f"Could not find model {spec['ModelName']}.") from error
            container = models.serving_container(model["ModelName"])
            try:
                model_dir = models.model_dir(spec["ModelName"])
            except Exception as error:
                raise FleetError(
                    f'Failed to download model data for container "container_1" from URL: '
                    f'"{container["ModelDataUrl"]}". ({error})'
                ) from error
            variant = Variant(
                name=spec["VariantName"],
                model_name=spec["ModelName"],
                instance_type=spec.get("InstanceType", "local"),
                weight=float(spec.get("InitialVariantWeight", 1.0)),
                fleet=Fleet(
                    label=label.format(variant=spec["VariantName"]),
                    model_dir=model_dir,
                    environment=dict(container.get("Environment", {})),
                    processes=processes,
                    serve_command=serve_command,
                    log_dir=log_root / spec["VariantName"],
                    startup_timeout=startup_timeout,
                ),
                desired_count=0 if is_serverless(spec) else int(spec.get("InitialInstanceCount", 1)),
                metrics=VariantMetrics(),
                image=str(container.get("Image", "")),
                serverless=ServerlessState.from_config(spec["ServerlessConfig"])
                if is_serverless(spec)
                else None,
            )
            variants[variant.name] = variant
            try:
                # A serverless variant's model is health-checked once, then nothing keeps running.
                variant.fleet.launch(variant.desired_count or 1)
            except FleetError as error:
                raise FleetError(
                    f"The primary container for production variant {variant.name} did not pass the ping "
                    f"health check. Please check CloudWatch logs for this endpoint. ({error})"
                ) from error
            if variant.serverless is not None:
                variant.fleet.stop_all()
                variant.fleet.instances = []
    except FleetError:
        for variant in variants.values():
            variant.fleet.stop_all()
        raise
    return variants
