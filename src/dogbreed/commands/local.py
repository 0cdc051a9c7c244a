"""`dogbreed local up|down|status|env|deploy|demo`: the local cloud (see docs/local-cloud.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from dogbreed.local.cloud import state as cloud_state
from dogbreed.loopback import pid_alive

if TYPE_CHECKING:
    from dogbreed.local.cloud.fault_client import FaultClient

UP_TIMEOUT_SECONDS = 180.0
DOWN_GRACE_SECONDS = 30.0


def register(subparsers: Any) -> None:
    local = subparsers.add_parser("local", help="the local cloud: moto + real processes, from template.yaml")
    commands = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--state-dir", type=Path, default=cloud_state.DEFAULT_STATE_DIR, help="default .local-cloud/"
        )

    up = commands.add_parser("up", help="start the local cloud and deploy template.yaml into it")
    common(up)
    up.add_argument("--port", type=int, default=cloud_state.DEFAULT_AWS_PORT, help="AWS APIs (default 4566)")
    up.add_argument(
        "--api-port", type=int, default=cloud_state.DEFAULT_API_PORT, help="HTTP API (default 3000)"
    )
    up.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    up.add_argument(
        "--no-loopback-urls",
        dest="loopback_urls",
        action="store_false",
        help="production URL policy for the functions: no http://127.0.0.1 image URLs (default: allowed)",
    )
    up.set_defaults(handler=_up)

    down = commands.add_parser("down", help="stop everything the local cloud started")
    common(down)
    down.set_defaults(handler=_down)

    status = commands.add_parser("status", help="resources, jobs, endpoints, scaling, executions")
    common(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    env = commands.add_parser("env", help='exports for boto3 / the AWS CLI: eval "$(dogbreed local env)"')
    common(env)
    env.set_defaults(handler=_env)

    deploy = commands.add_parser("deploy", help="(re)deploy template.yaml into the running local cloud")
    common(deploy)
    deploy.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    deploy.set_defaults(handler=_deploy)

    _register_fault(commands, common)

    from dogbreed.local.cloud import demo

    demo.register(commands, common)


FAULT_KINDS = ("aws", "endpoint", "endpoint-down", "training", "endpoint-update")


def _register_fault(commands: Any, common: Any) -> None:
    fault = commands.add_parser("fault", help="inject faults into the running local cloud (add|list|clear)")
    actions = fault.add_subparsers(dest="fault_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="inject a fault",
        description=(
            "aws: answer matching AWS API requests with an error; endpoint: InvokeEndpoint errors; "
            "endpoint-down: ServiceUnavailable until cleared; training: kill matching training jobs "
            "mid-run; endpoint-update: the next UpdateEndpoint's new fleet fails to start."
        ),
    )
    common(add)
    add.add_argument("kind", choices=FAULT_KINDS)
    add.add_argument("--service", default="", help="aws: the SigV4 service name (dynamodb, s3, sqs, ...)")
    add.add_argument(
        "--operation", default="", help="aws: PutItem, GetObject, SendMessage, ... (default any)"
    )
    add.add_argument(
        "--resource",
        default="",
        help="substring to match: of the request path/query/body (aws), the endpoint name (endpoint, "
        "endpoint-down, endpoint-update) or the training job name (training); default any",
    )
    add.add_argument(
        "--error",
        default="",
        help="error code (aws default InternalServerError; endpoint: ThrottlingException, "
        "ServiceUnavailable, InternalFailure, ModelError, ModelNotReadyException)",
    )
    add.add_argument("--status", type=int, default=0, help="aws: HTTP status (default: the code's own)")
    add.add_argument("--message", default="", help="error message (default names the fault)")
    budget = add.add_mutually_exclusive_group()
    budget.add_argument("--count", type=int, default=1, help="matches to fail (default 1)")
    budget.add_argument("--until-cleared", action="store_true", help="fail every match until cleared")
    add.add_argument(
        "--delay", type=float, default=None, help="training: seconds the job runs before it is killed"
    )
    add.set_defaults(handler=_fault_add)

    listing = actions.add_parser("list", help="faults with their hit counts")
    common(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_fault_list)

    clear = actions.add_parser("clear", help="remove faults (all when no id is given)")
    common(clear)
    clear.add_argument("ids", nargs="*", metavar="ID")
    clear.set_defaults(handler=_fault_clear)


# --- helpers used by the demo and the tests too ---------------------------------------------
def running_state(state_dir: Path) -> cloud_state.CloudState | None:
    """The running cloud's state, or None when it is not up (stale files are ignored)."""
    state = cloud_state.CloudState.read(state_dir)
    if state is None or not pid_alive(state.pid):
        return None
    try:
        httpx.get(f"{state.control_url}/health", timeout=5).raise_for_status()
    except httpx.HTTPError:
        return None
    return state


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((cloud_state.HOST, port)) == 0


def start_cloud(
    state_dir: Path,
    *,
    aws_port: int,
    api_port: int,
    overrides: list[str],
    quiet: bool = False,
    loopback_urls: bool = True,
) -> cloud_state.CloudState:
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    for port in (aws_port, api_port):
        if port and port_in_use(port):
            raise RuntimeError(
                f"port {port} is already in use on {cloud_state.HOST}; pick another with a flag"
            )
    with contextlib.suppress(FileNotFoundError):
        (state_dir / cloud_state.STATE_FILE).unlink()
    log = (state_dir / cloud_state.LOG_FILE).open("ab")
    command = [
        sys.executable, "-m", "dogbreed.local.cloud.server",
        "--state-dir", str(state_dir),
        "--aws-port", str(aws_port),
        "--api-port", str(api_port),
        "--parameter-overrides", " ".join(overrides),
        *([] if loopback_urls else ["--no-loopback-urls"]),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    (state_dir / cloud_state.PID_FILE).write_text(str(process.pid), encoding="utf-8")
    deadline = time.monotonic() + UP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (state_dir / cloud_state.LOG_FILE).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the local cloud exited with code {process.returncode}:\n{tail}")
        state = running_state(state_dir)
        if state is not None and state.outputs:
            return state
        if not quiet:
            print(".", end="", flush=True)
        time.sleep(0.5)
    stop_cloud(state_dir)
    raise RuntimeError(f"the local cloud did not answer within {UP_TIMEOUT_SECONDS:.0f} s")


def _pgid_alive(pgid: int) -> bool:
    # When this process started the cloud (the demo, tests), reap it so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_cloud(state_dir: Path) -> bool:
    """Stop the cloud process (its process group) and the job/endpoint process groups it started.
    Returns whether anything was running."""
    from dogbreed.local.cloud.server import CHILDREN_FILE

    pid_file = state_dir / cloud_state.PID_FILE
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text().strip() or 0)
    children_file = state_dir / CHILDREN_FILE
    children = [int(line) for line in children_file.read_text().split()] if children_file.is_file() else []
    was_running = pid > 0 and pid_alive(pid)
    if was_running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # start_new_session: the cloud leads its own group
        deadline = time.monotonic() + DOWN_GRACE_SECONDS
        while time.monotonic() < deadline and _pgid_alive(pid):
            time.sleep(0.2)
        if _pgid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    # Job and endpoint processes lead their own groups; the cloud stops them on SIGTERM, and these
    # recorded ids catch any it could not.
    for child in children:
        if _pgid_alive(child):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
    for name in (cloud_state.PID_FILE, cloud_state.STATE_FILE, CHILDREN_FILE):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()
    return was_running


def cloud_status(state: cloud_state.CloudState) -> dict[str, Any]:
    response = httpx.get(f"{state.control_url}/status", timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def deploy_stack(state: cloud_state.CloudState, overrides: dict[str, str]) -> dict[str, Any]:
    response = httpx.post(f"{state.control_url}/deploy", json={"parameters": overrides}, timeout=120)
    result: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise RuntimeError(str(result.get("error")))
    return result


def sagemaker_call(state: cloud_state.CloudState, operation: str, **request: Any) -> dict[str, Any]:
    """A boto3-shaped call to the cloud's local SageMaker backend (ClientError-like RuntimeError)."""
    response = httpx.post(f"{state.control_url}/sagemaker/{operation}", json=request, timeout=60)
    result: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise RuntimeError(f"{operation}: {result.get('error')}")
    return result


def parse_overrides(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"dogbreed local: parameter override {item!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides


# --- handlers ----------------------------------------------------------------------------------
def _up(args: argparse.Namespace) -> int:
    state = running_state(args.state_dir)
    if state is not None:
        print(f"the local cloud is already up (pid {state.pid}): AWS {state.aws_url}, API {state.api_url}")
        return 0
    parse_overrides(args.parameter_overrides)
    print(f"starting the local cloud (logs: {args.state_dir / cloud_state.LOG_FILE})", end="", flush=True)
    try:
        state = start_cloud(
            args.state_dir,
            aws_port=args.port,
            api_port=args.api_port,
            overrides=args.parameter_overrides,
            loopback_urls=args.loopback_urls,
        )
    except RuntimeError as error:
        print(f"\ndogbreed local up: {error}", file=sys.stderr)
        return 1
    print(f"\nlocal cloud up (pid {state.pid})")
    print(f"  AWS APIs          {state.aws_url}")
    print(f"  HTTP API          {state.api_url}")
    print(f"  sagemaker-runtime {state.runtime_url}")
    print(f"  stack             {state.stack_name}: data bucket {state.outputs.get('DataBucketName')}, "
          f"inference bucket {state.outputs.get('InferenceBucketName')}")  # fmt: skip
    print('point your shell at it: eval "$(dogbreed local env)"')
    return 0


def _down(args: argparse.Namespace) -> int:
    if stop_cloud(args.state_dir):
        print("local cloud stopped")
    else:
        print("the local cloud is not running")
    return 0


def _env(args: argparse.Namespace) -> int:
    state = running_state(args.state_dir)
    if state is None:
        print("dogbreed local env: the local cloud is not up (dogbreed local up)", file=sys.stderr)
        return 1
    print(cloud_state.shell_exports(state.environment()))
    return 0


def _deploy(args: argparse.Namespace) -> int:
    state = running_state(args.state_dir)
    if state is None:
        print("dogbreed local deploy: the local cloud is not up (dogbreed local up)", file=sys.stderr)
        return 1
    try:
        result = deploy_stack(state, parse_overrides(args.parameter_overrides))
    except RuntimeError as error:
        print(f"dogbreed local deploy: {error}", file=sys.stderr)
        return 1
    print(f"created: {', '.join(result['created']) or '-'}; updated: {', '.join(result['updated']) or '-'}")
    return 0


def render_status(status: dict[str, Any]) -> str:
    state = status["state"]
    sm = status["sagemaker"]
    lines = [
        f"local cloud pid {state['pid']}: AWS http://127.0.0.1:{state['aws_port']}, "
        f"API http://127.0.0.1:{state['api_port']}, runtime {state['runtime_url']}",
        "",
        "resources:",
        *[f"  {logical:<28} {name}" for logical, name in sorted(status["resources"].items())],
        *[f"  function                     {name}" for name in status["functions"]],
        *[f"  rule                         {name}" for name in status["rules"]],
        "",
        "training jobs:",
        *[
            f"  {job['TrainingJobName']:<48} {job['TrainingJobStatus']:<11} {job.get('SecondaryStatus', '')}"
            for job in sm.get("training_jobs", [])
        ][:15],
        "",
        "endpoints:",
    ]
    from dogbreed.local.cloud.demo import endpoint_summary

    for endpoint in sm.get("endpoints", []):
        lines.append(f"  {endpoint_summary(endpoint)}")
    lines += ["", "recent scaling activity:"]
    lines += [f"  {json.dumps(item, default=str)[:200]}" for item in sm.get("scaling_activities", [])[-5:]]
    lines += ["", "recent executions:"]
    lines += [
        f"  {item['name']:<48} {item['status']:<10} {item['started']}" for item in status["executions"][:10]
    ]
    lines += ["", "recent event deliveries:"]
    lines += [
        f"  {item['rule']} -> {item['target'].rsplit(':', 1)[-1]}: {item['detail']} {item['outcome']}"
        f" ({item['attempts']} attempt(s))"
        for item in status["deliveries"][-10:]
    ]
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    state = running_state(args.state_dir)
    if state is None:
        print("the local cloud is not running")
        return 1
    status = cloud_status(state)
    print(json.dumps(status, indent=2, default=str) if args.json else render_status(status))
    return 0


def fault_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The control API's fault body for `dogbreed local fault add` arguments."""
    kind = args.kind.replace("-", "_")
    fields: dict[str, Any] = {
        key: value
        for key, value in (
            ("service", args.service),
            ("operation", args.operation),
            ("resource", args.resource),
            ("error", args.error),
            ("status", args.status),
            ("message", args.message),
        )
        if value
    }
    fields["count"] = None if args.until_cleared else args.count
    if kind == "endpoint_down":  # an endpoint with no healthy instance, until cleared
        kind, fields["error"], fields["count"] = "endpoint", "ServiceUnavailable", None
    if args.delay is not None:
        fields["delay_seconds"] = args.delay
    return kind, fields


def render_fault(fault: dict[str, Any]) -> str:
    target = " ".join(str(fault[key]) for key in ("service", "operation") if fault[key]) or "*"
    if fault["resource"]:
        target += f" ~{fault['resource']!r}"
    budget = "until cleared" if fault["count"] is None else f"{fault['remaining']}/{fault['count']} left"
    state = "active" if fault["active"] else "spent"
    return (
        f"{fault['id']}  {fault['kind']:<15} {target:<40} {fault['error'] or '-':<38} {budget:<14} "
        f"hits={fault['hits']} {state}"
    )


def _fault_client(args: argparse.Namespace) -> FaultClient | None:
    from dogbreed.local.cloud.fault_client import FaultClient

    state = running_state(args.state_dir)
    if state is None:
        print("dogbreed local fault: the local cloud is not up (dogbreed local up)", file=sys.stderr)
        return None
    return FaultClient(state)


def _fault_add(args: argparse.Namespace) -> int:
    from dogbreed.local.cloud.fault_client import FaultError

    client = _fault_client(args)
    if client is None:
        return 1
    kind, fields = fault_request(args)
    try:
        fault = client.add(kind, **fields)
    except FaultError as error:
        print(f"dogbreed local fault add: {error}", file=sys.stderr)
        return 1
    print(render_fault(fault))
    return 0


def _fault_list(args: argparse.Namespace) -> int:
    client = _fault_client(args)
    if client is None:
        return 1
    faults = client.faults()
    if args.json:
        print(json.dumps(faults, indent=2))
    else:
        print("\n".join(render_fault(fault) for fault in faults) or "no faults")
    return 0


def _fault_clear(args: argparse.Namespace) -> int:
    from dogbreed.local.cloud.fault_client import FaultError

    client = _fault_client(args)
    if client is None:
        return 1
    try:
        removed = client.clear(*args.ids)
    except FaultError as error:
        print(f"dogbreed local fault clear: {error}", file=sys.stderr)
        return 1
    for fault in removed:
        print(f"cleared {fault['id']} after {fault['hits']} hit(s)")
    return 0
