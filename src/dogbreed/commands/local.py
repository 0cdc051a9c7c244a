"""`dogbreed local up|down|status|env|deploy|demo|monitor`: the local cloud (see docs/local-cloud.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.lifecycle import (
    cloud_status,
    deploy_stack,
    parse_overrides,
    running_state,
    start_cloud,
    stop_cloud,
)
from dogbreed.terminal import text_table, waiting

if TYPE_CHECKING:
    from dogbreed.local.cloud.fault_client import FaultClient


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
    up.add_argument(
        "--metric-period-scale",
        type=float,
        default=1.0,
        help="shorten alarm periods and the services' 1-minute metrics by this factor (0.05: 5 min -> 15 s)",
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
    env.add_argument(
        "--profile",
        metavar="NAME",
        help="write AWS profile NAME (endpoint_url, region, keys) to the AWS config file instead, and "
        "export only the stack's DOGBREED_* names: AWS tools reach the cloud with --profile NAME alone",
    )
    env.set_defaults(handler=_env)

    deploy = commands.add_parser("deploy", help="(re)deploy template.yaml into the running local cloud")
    common(deploy)
    deploy.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    deploy.set_defaults(handler=_deploy)

    _register_fault(commands, common)

    from dogbreed.local.cloud import demo, monitor_command
    from dogbreed.local.iam import command as iam_command

    demo.register(commands, common)
    iam_command.register(commands, common)
    monitor_command.register(commands, common)


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
            "mid-run; endpoint-update: the next UpdateEndpoint's new fleet is broken (--error exit: it fails "
            "to start; server-error: it answers 500; slow: it answers --delay seconds late)."
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
        "ServiceUnavailable, InternalFailure, ModelError, ModelNotReadyException; endpoint-update: "
        "exit, server-error, slow)",
    )
    add.add_argument("--status", type=int, default=0, help="aws: HTTP status (default: the code's own)")
    add.add_argument("--message", default="", help="error message (default names the fault)")
    budget = add.add_mutually_exclusive_group()
    budget.add_argument("--count", type=int, default=1, help="matches to fail (default 1)")
    budget.add_argument("--until-cleared", action="store_true", help="fail every match until cleared")
    add.add_argument(
        "--delay",
        type=float,
        default=None,
        help="training: seconds the job runs before it is killed; endpoint-update slow: seconds each "
        "invocation is late",
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


def _overrides(items: list[str]) -> dict[str, str]:
    try:
        return parse_overrides(items)
    except ValueError as error:
        raise SystemExit(f"dogbreed local: {error}") from None


# --- handlers ----------------------------------------------------------------------------------
def _up(args: argparse.Namespace) -> int:
    state = running_state(args.state_dir)
    if state is not None:
        print(f"the local cloud is already up (pid {state.pid}): AWS {state.aws_url}, API {state.api_url}")
        return 0
    _overrides(args.parameter_overrides)
    try:
        with waiting(f"starting the local cloud (logs: {args.state_dir / cloud_state.LOG_FILE})"):
            state = start_cloud(
                args.state_dir,
                aws_port=args.port,
                api_port=args.api_port,
                overrides=args.parameter_overrides,
                loopback_urls=args.loopback_urls,
                metric_period_scale=args.metric_period_scale,
            )
    except RuntimeError as error:
        print(f"dogbreed local up: {error}", file=sys.stderr)
        return 1
    print(f"local cloud up (pid {state.pid})")
    print(f"  AWS APIs          {state.aws_url} (SageMaker and sagemaker-runtime included)")
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
    environment = state.environment()
    if args.profile:
        from dogbreed.aws.shared_config import write_profile

        try:
            path = write_profile(args.profile, state.profile())
        except ValueError as error:
            print(f"dogbreed local env: error: {error}", file=sys.stderr)
            return 2
        environment = {key: value for key, value in environment.items() if key.startswith("DOGBREED_")}
        print(
            f"wrote profile {args.profile} to {path}: aws --profile {args.profile} ... "
            "(AWS_ENDPOINT_URL or AWS_ACCESS_KEY_ID set in the shell still win over any profile)",
            file=sys.stderr,
        )
    print(cloud_state.shell_exports(environment))
    return 0


def _deploy(args: argparse.Namespace) -> int:
    state = running_state(args.state_dir)
    if state is None:
        print("dogbreed local deploy: the local cloud is not up (dogbreed local up)", file=sys.stderr)
        return 1
    try:
        result = deploy_stack(state, _overrides(args.parameter_overrides))
    except RuntimeError as error:
        print(f"dogbreed local deploy: {error}", file=sys.stderr)
        return 1
    print(f"created: {', '.join(result['created']) or '-'}; updated: {', '.join(result['updated']) or '-'}")
    return 0


def _section(
    title: str, headers: tuple[str, ...], rows: list[tuple[object, ...]], right: tuple[int, ...] = ()
) -> list[str]:
    if not rows:
        return ["", f"{title}: none"]
    return ["", f"{title}:", text_table(headers, rows, right=right, indent=2)]


def render_status(status: dict[str, Any]) -> str:
    """`status`: the control API's /status with "sagemaker" holding both the emulator's fleets and
    SageMaker's own view (`sagemaker_view.overview`)."""
    from dogbreed.local.cloud.sagemaker_view import endpoint_summary

    state = status["state"]
    sm = status["sagemaker"]
    resources = [
        *sorted(status["resources"].items()),
        *(("function", name) for name in status["functions"]),
        *(("rule", name) for name in status["rules"]),
    ]
    lines = [
        f"local cloud pid {state['pid']}: AWS http://127.0.0.1:{state['aws_port']}, "
        f"API http://127.0.0.1:{state['api_port']}, runtime {state['runtime_url']}",
        *_section("resources", ("RESOURCE", "NAME"), resources),
        *_section(
            "tuning jobs",
            ("NAME", "STATUS", "COMPLETED"),
            [
                (
                    job["HyperParameterTuningJobName"],
                    job["HyperParameterTuningJobStatus"],
                    job["TrainingJobStatusCounters"].get("Completed", 0),
                )
                for job in sm.get("tuning_jobs", [])
            ],
            right=(2,),
        ),
        *_section(
            "training jobs",
            ("NAME", "STATUS", "SECONDARY STATUS"),
            [
                (job["TrainingJobName"], job["TrainingJobStatus"], job.get("SecondaryStatus", ""))
                for job in sm.get("training_jobs", [])
            ],
        ),
        *_section(
            "transform jobs in progress",
            ("NAME", "INPUTS DONE", "FAILED"),
            [
                (job["TransformJobName"], f"{job['processed']}/{job['inputs']}", len(job["failed"]))
                for job in sm.get("transform_jobs", [])
            ],
            right=(1, 2),
        ),
        "",
        "endpoints:",
    ]
    fleets = {fleet["EndpointName"]: fleet for fleet in sm.get("fleets", [])}
    for endpoint in sm.get("endpoints", []):
        lines.append(f"  {endpoint_summary(endpoint, fleets.get(endpoint['EndpointName']))}")
    lines += ["", "recent scaling activity:"]
    lines += [f"  {json.dumps(item, default=str)[:200]}" for item in sm.get("scaling_activities", [])[-5:]]
    lines += _section(
        "recent executions",
        ("NAME", "STATUS", "STARTED"),
        [(item["name"], item["status"], item["started"]) for item in status["executions"][:10]],
    )
    lines += ["", "recent event deliveries:"]
    lines += [
        f"  {item['rule']} -> {item['target'].rsplit(':', 1)[-1]}: {item['detail']} {item['outcome']}"
        f" ({item['attempts']} attempt(s))"
        for item in status["deliveries"][-10:]
    ]
    lambdas = status.get("lambda", {})
    keys = {item["function"]: item["access_key_id"] for item in lambdas.get("principals", [])}
    queued = lambdas.get("async_queued", {})
    lines += _section(
        "lambda workers",
        ("FUNCTION", "IDLE", "BUSY", "STARTING", "QUEUED ASYNC", "ACCESS KEY ID"),
        [
            (
                name,
                *(counts[kind] for kind in ("idle", "busy", "starting")),
                queued.get(name, 0),
                keys.get(name, ""),
            )
            for name, counts in lambdas.get("functions", {}).items()
        ],
        right=(1, 2, 3, 4),
    )
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    state = running_state(args.state_dir)
    if state is None:
        print("the local cloud is not running")
        return 1
    from dogbreed.local.cloud.sagemaker_view import overview

    status = cloud_status(state)
    status["sagemaker"].update(overview(state.client("sagemaker")))
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
