"""The options that name a stack for the commands that act on one (`batch`, `teardown`): a
samconfig.toml environment, a stack name, or the running local cloud's stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from dogbreed.local.cloud import state as cloud_state
from dogbreed.stack_target import CONFIG_ENVS, DEFAULT_CONFIG_ENV


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
