"""The local cloud a benchmark runs on: the running one or one started for the run, and an InService
endpoint on it (the stack's own, or `--model-dir` / a freshly trained tiny model deployed)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dogbreed.local.cloud.state import CloudState


@contextmanager
def target_cloud(state_dir: Path) -> Iterator[CloudState]:
    """The running local cloud, or one started here (on free ports) and stopped afterwards."""
    from dogbreed.local.cloud.lifecycle import running_state, start_cloud, stop_cloud
    from dogbreed.loopback import free_port

    state = running_state(state_dir)
    if state is not None:
        yield state
        return
    print(f"no local cloud in {state_dir}: starting one for this run", flush=True)
    state = start_cloud(state_dir, aws_port=free_port(), api_port=free_port(), overrides=[])
    try:
        yield state
    finally:
        stop_cloud(state_dir)


def ensure_endpoint(state: CloudState, model_dir: Path | None, *, name: str) -> None:
    """Leave an InService endpoint alone; otherwise serve `model_dir` or a freshly trained tiny model."""
    from dogbreed.local.cloud.model_deploy import deploy_model_dir, endpoint_status, wait_in_service

    status = endpoint_status(state)
    if status in ("Creating", "Updating", "SystemUpdating"):
        try:
            wait_in_service(state, timeout=300)
            return
        except (TimeoutError, RuntimeError):
            status = endpoint_status(state)
    if status == "InService":
        return
    with tempfile.TemporaryDirectory(prefix="dogbreed-load-model-") as scratch:
        if model_dir is None:
            from dogbreed.bench.tiny_model import train_tiny_model

            print("the stack endpoint is not InService: training the tiny model to serve", flush=True)
            model_dir = train_tiny_model(Path(scratch) / "model")
        print(f"serving {model_dir} on {state.outputs['EndpointName']}", flush=True)
        deploy_model_dir(state, model_dir, name=name)
