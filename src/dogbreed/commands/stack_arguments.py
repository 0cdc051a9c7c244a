"""The options that name a stack for the commands that act on one (`approve`, `batch`, `teardown`):
a samconfig.toml environment, a stack name, or the running local cloud's stack; and what they resolve
to, clients and the stack's outputs:

    clients, outputs = stack_clients(args)     # AWS (CloudFormation's outputs) or the local cloud
    clients("stepfunctions").list_executions(stateMachineArn=outputs["TrainingPipelineArn"])
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dogbreed.local.cloud import state as cloud_state
from dogbreed.stack_target import CONFIG_ENVS, DEFAULT_CONFIG_ENV, stack_outputs, stack_target

StackClients = tuple[Callable[[str], Any], dict[str, str]]  # (client factory, stack outputs)


class CloudNotUp(LookupError):
    """`--local`, and no local cloud answers in the state directory."""


def add_stack_target_arguments(
    parser: argparse.ArgumentParser, config_env_help: str = "samconfig.toml environment"
) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--config-env",
        choices=sorted(CONFIG_ENVS),
        default=DEFAULT_CONFIG_ENV,
        help=config_env_help,
    )
    target.add_argument("--stack", help="the stack name (instead of samconfig.toml's)")
    target.add_argument("--local", action="store_true", help="the running local cloud's stack")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=cloud_state.DEFAULT_STATE_DIR,
        help="local cloud (default .local-cloud/)",
    )
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")


def stack_clients(args: argparse.Namespace) -> StackClients:
    """Clients and outputs of the stack the arguments name. Raises CloudNotUp (--local, no cloud),
    StackNotFound (no such stack on AWS) or StackConfigError (samconfig.toml lacks the environment)."""
    if args.local:
        from dogbreed.local.cloud.lifecycle import running_state

        state = running_state(args.state_dir)
        if state is None:
            raise CloudNotUp("the local cloud is not up (dogbreed local up)")
        return state.client, state.outputs
    target = stack_target(args.config_env, stack=args.stack, region=args.region)
    session = target.session()
    return session.client, stack_outputs(session.client("cloudformation"), target.name)
