"""`dogbreed local demo` in tests: the whole pipeline on a fresh local cloud with tiny settings (one
trial of 1-2 epochs, the trial's model deployed), the cloud kept up for the module's tests."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dogbreed.local.cloud.demo import run_demo
from dogbreed.local.cloud.lifecycle import stop_cloud
from dogbreed.local.cloud.state import CloudState
from dogbreed.loopback import free_port
from tests.support.local_cloud import TINY_PIPELINE


@contextmanager
def demo_run(root: Path, overrides: list[str], *, rollout: bool = True) -> Iterator[dict[str, Any]]:
    """Run the demo once with TINY_PIPELINE plus `overrides` (and its safe-rollout step unless
    `rollout` is False): its exit code, the cloud's state, the summary it wrote and the state
    directory; the cloud stops when the block ends."""
    args = argparse.Namespace(
        state_dir=root / "cloud",
        port=free_port(),
        api_port=free_port(),
        classes=3,
        per_class=16,
        size=48,
        timeout=420.0,
        parameter_overrides=[*TINY_PIPELINE, *overrides],
        json_summary=root / "summary.json",
        rollout=rollout,
    )
    try:
        code = run_demo(args)
        state = CloudState.read(args.state_dir)
        assert state is not None
        summary = json.loads(args.json_summary.read_text()) if args.json_summary.exists() else {}
        yield {"code": code, "state": state, "summary": summary, "state_dir": args.state_dir}
    finally:
        stop_cloud(args.state_dir)
