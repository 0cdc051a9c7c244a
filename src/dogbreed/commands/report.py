"""`dogbreed report [--model-version V]`: one static HTML page on a model version of a stack (the
deployed one through CloudFormation's outputs, or the running local cloud with `--local`): training
curves, confusion matrix, tuning trials, the gate decision beside production, and drift over time."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dogbreed.report import write_report


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="one static HTML page on a model version: curves, confusion matrix, trials, gate, drift",
    )
    report.add_argument("--model-version", default=None, help="the model version (default: the latest)")
    report.add_argument("--out", type=Path, default=None, help="HTML file (default reports/<version>.html)")
    report.add_argument("--config-env", default="dev", help="samconfig.toml environment (dev or prod)")
    report.add_argument("--local", action="store_true", help="the running local cloud's stack")
    report.add_argument("--state-dir", type=Path, default=None, help="the local cloud's state (with --local)")
    report.set_defaults(handler=_report)


def _target(args: argparse.Namespace) -> tuple[Any, dict[str, str]]:
    """(client factory, stack outputs)."""
    if args.local:
        from dogbreed.local.cloud import state as cloud_state
        from dogbreed.local.cloud.lifecycle import running_state

        state = running_state(args.state_dir or cloud_state.DEFAULT_STATE_DIR)
        if state is None:
            raise LookupError("the local cloud is not up (dogbreed local up / demo first)")
        return state.client, dict(state.outputs)
    from dogbreed.stack_target import stack_outputs, stack_target

    target = stack_target(args.config_env)
    session = target.session()
    return session.client, stack_outputs(session.client("cloudformation"), target.name)


def _report(args: argparse.Namespace) -> int:
    try:
        clients, outputs = _target(args)
        path = write_report(clients, outputs, args.model_version, args.out)
    except LookupError as error:
        print(f"dogbreed report: {error}")
        return 1
    print(f"report written: {path.resolve()}")
    return 0
