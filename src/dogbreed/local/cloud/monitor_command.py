"""`dogbreed local monitor`: run the stack's drift monitor function now (the same function its
EventBridge schedule runs on AWS; the local cloud does not run schedules) over the window that ends
now, and print its summary: per model version, the captured predictions, the drift figures against
the training baseline and why the window is judged as it is."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dogbreed.local.cloud.state import CloudState


def register(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    monitor = commands.add_parser(
        "monitor", help="run the drift monitor over the last window of captures now"
    )
    common(monitor)
    monitor.add_argument("--json", action="store_true", help="print the function's summary as JSON")
    monitor.set_defaults(handler=_monitor)


def invoke_monitor(state: CloudState, when: datetime | None = None) -> dict[str, Any]:
    """Invoke the deployed MonitorDriftFunction with a scheduled event ending its window at `when`."""
    event = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {},
    }
    response = state.client("lambda").invoke(
        FunctionName=state.outputs["MonitorDriftFunctionName"], Payload=json.dumps(event).encode()
    )
    payload: dict[str, Any] = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise RuntimeError(f"the monitor function failed: {payload.get('errorMessage', payload)}")
    return payload


def render(summary: dict[str, Any]) -> str:
    def figure(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"window {summary['window_start']} .. {summary['window_end']}: {summary['status']}"]
    lines.append(f"  capture files {summary['files']}, corrupt lines {len(summary['corrupt_lines'])}")
    for report in summary["reports"]:
        lines.append(
            f"  model {report['model_version'] or '-'}: {report['status']}, "
            f"{report['records']} prediction(s), "
            f"class JS {figure(report['class_js'])} (PSI {figure(report['class_psi'])}), "
            f"confidence JS {figure(report['confidence_js'])} (PSI {figure(report['confidence_psi'])}), "
            f"image statistics drifted: {', '.join(report['features_drifted']) or 'none'}"
        )
        lines += [f"    {reason}" for reason in report["reasons"]]
    return "\n".join(lines)


def _monitor(args: argparse.Namespace) -> int:
    from dogbreed.local.cloud.lifecycle import running_state

    state = running_state(args.state_dir)
    if state is None:
        print(f"no local cloud runs with state in {args.state_dir} (dogbreed local up / demo first)")
        return 2
    try:
        summary = invoke_monitor(state)
    except (RuntimeError, KeyError) as error:
        print(f"dogbreed local monitor: {error}")
        return 1
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 0
