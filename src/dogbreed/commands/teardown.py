"""`dogbreed teardown`: remove a deployed stack and what its pipeline made (docs/deploy.md,
"Teardown"). The logic is `dogbreed.stack_teardown`; this parses the target and reports."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx

from dogbreed.commands.stack_arguments import add_stack_target_arguments
from dogbreed.local.cloud import state as cloud_state
from dogbreed.stack_target import StackConfigError, stack_target
from dogbreed.stack_teardown import TeardownReport


def register(subparsers: Any) -> None:
    teardown = subparsers.add_parser(
        "teardown",
        help="delete a stack with its endpoints, endpoint configs, models and bucket contents",
        description=(
            "Finds the SageMaker endpoints, endpoint configs and models tagged dogbreed:stack=<stack> "
            "(the pipeline creates them; CloudFormation does not own them) and deletes them, empties "
            "the stack's buckets (object versions and delete markers included), then deletes the "
            "stack: CloudFormation's DeleteStack on AWS, the local stack's resources with --local. "
            "Buckets and tables the stack retains (prod) are kept unless --delete-retained."
        ),
    )
    add_stack_target_arguments(
        teardown, config_env_help="samconfig.toml environment whose stack_name to tear down (default dev)"
    )
    teardown.add_argument(
        "--delete-retained",
        action="store_true",
        help="also empty and delete the buckets and tables the stack retains (prod data: irreversible)",
    )
    teardown.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    teardown.set_defaults(handler=_teardown)


def format_report(report: TeardownReport) -> str:
    found = report.sagemaker
    lines = [
        f"stack {report.stack} torn down",
        f"  endpoints: {', '.join(found.endpoints) or 'none'}",
        f"  endpoint configs: {', '.join(found.endpoint_configs) or 'none'}",
        f"  models: {', '.join(found.models) or 'none'}",
    ]
    lines += [
        f"  emptied {bucket}: {count} object versions and delete markers"
        for bucket, count in report.emptied.items()
    ]
    lines += [f"  deleted {item}" for item in report.deleted]
    lines += [
        f"  kept (DeletionPolicy Retain; --delete-retained removes it): {item}" for item in report.retained
    ]
    return "\n".join(lines)


def _confirm(stack: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    answer = input(f"This deletes stack {stack}, its endpoints, models and bucket contents. Type its name: ")
    return answer.strip() == stack


def _teardown(args: argparse.Namespace) -> int:
    from dogbreed import stack_teardown

    if args.local:
        from dogbreed.local.cloud.lifecycle import running_state
        from dogbreed.template_stack import TemplateStack

        state = running_state(args.state_dir)
        if state is None:
            print("dogbreed teardown: the local cloud is not up (dogbreed local up)", file=sys.stderr)
            return 1
        if not _confirm(state.stack_name, args.yes):
            print("dogbreed teardown: not confirmed; nothing deleted", file=sys.stderr)
            return 1
        stack = TemplateStack.load(parameters=state.parameters, stack_name=state.stack_name)
        # The cloud stops routing events and requests to the stack before its resources go.
        httpx.post(f"{state.control_url}/undeploy", timeout=60).raise_for_status()
        report = stack_teardown.teardown_local(
            cloud_state.local_session(), state.aws_url, stack, delete_retained=args.delete_retained
        )
        print(format_report(report))
        print(
            "the local cloud still runs: `dogbreed local deploy` re-creates the stack, "
            "`dogbreed local down` stops it"
        )
        return 0

    try:
        target = stack_target(args.config_env, stack=args.stack, region=args.region)
    except StackConfigError as error:
        print(f"dogbreed teardown: {error}", file=sys.stderr)
        return 1
    if not _confirm(target.name, args.yes):
        print("dogbreed teardown: not confirmed; nothing deleted", file=sys.stderr)
        return 1
    report = stack_teardown.teardown_aws(target.session(), target.name, delete_retained=args.delete_retained)
    print(format_report(report))
    return 0
