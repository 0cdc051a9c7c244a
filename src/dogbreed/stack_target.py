"""Which stack a command acts on, in which region, and what the stack outputs.

samconfig.toml holds the environments: `dev` (its `default` section) and `prod`, each with a stack
name, a region and the parameter overrides `sam deploy` passes. A command names an environment, may
replace its stack name or region, and reads the deployed stack's outputs through CloudFormation:

    target = stack_target("prod", region="eu-west-1")        # StackTarget(name, region, section)
    outputs = stack_outputs(target.session().client("cloudformation"), target.name)

`dogbreed deploy` and `dogbreed teardown` resolve their stack here; the template resolver
(`dogbreed.local.template_resources`) and `dogbreed cost` read the environments' parameter overrides
here too. The local cloud's stack is not in here: it has no CloudFormation, and its own state file
(`dogbreed.local.cloud.state`) names the stack and its outputs.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dogbreed import REPO_ROOT

if TYPE_CHECKING:
    import boto3

SAMCONFIG_PATH: Final = REPO_ROOT / "samconfig.toml"
# Environment names on the command line -> samconfig.toml sections (`default` is dev).
CONFIG_ENVS: Final = {"dev": "default", "default": "default", "prod": "prod"}
DEFAULT_CONFIG_ENV: Final = "dev"


class StackConfigError(ValueError):
    """samconfig.toml does not say what the environment needs (a section, a stack name)."""


class StackNotFound(LookupError):
    """No stack of that name in this account and region."""


def samconfig_section(config_env: str) -> str:
    """The samconfig.toml section of an environment (`dev` -> `default`)."""
    try:
        return CONFIG_ENVS[config_env]
    except KeyError as exc:
        choices = ", ".join(sorted(CONFIG_ENVS))
        raise StackConfigError(f"unknown environment {config_env!r}; choose one of {choices}") from exc


def _section(section: str, table: str, path: Path) -> dict[str, Any]:
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        parameters: dict[str, Any] = config[section][table]["parameters"]
    except KeyError as exc:
        raise StackConfigError(f"{path.name} has no [{section}.{table}.parameters]") from exc
    return parameters


def samconfig_overrides(section: str = "default", path: Path = SAMCONFIG_PATH) -> dict[str, str]:
    """The `parameter_overrides` of `[<section>.deploy.parameters]` as a dict (a string of
    `Key=Value` items, as sam writes it, or a TOML list of them)."""
    raw = _section(section, "deploy", path).get("parameter_overrides", "")
    items = shlex.split(raw) if isinstance(raw, str) else [str(item) for item in raw]
    return dict(item.split("=", 1) for item in items)


def stack_name_of(config_env: str, path: Path = SAMCONFIG_PATH) -> str:
    """The stack_name of a samconfig.toml environment (`dev` is its `default`)."""
    section = samconfig_section(config_env)
    name = _section(section, "global", path).get("stack_name")
    if not name:
        raise StackConfigError(f"{path.name} has no stack_name in [{section}.global.parameters]")
    return str(name)


def region_of(config_env: str, path: Path = SAMCONFIG_PATH) -> str | None:
    """The region a samconfig.toml environment deploys to (None: the AWS configuration's)."""
    region = _section(samconfig_section(config_env), "global", path).get("region")
    return str(region) if region else None


@dataclass(frozen=True)
class StackTarget:
    """A stack on AWS: its name, its region (None: the AWS configuration's default) and the
    samconfig.toml section `sam build` and `sam deploy` read (`--config-env`)."""

    name: str
    region: str | None
    section: str

    def session(self) -> boto3.session.Session:
        import boto3

        return boto3.session.Session(region_name=self.region) if self.region else boto3.session.Session()


def stack_target(
    config_env: str = DEFAULT_CONFIG_ENV,
    *,
    stack: str | None = None,
    region: str | None = None,
    path: Path = SAMCONFIG_PATH,
) -> StackTarget:
    """The environment's stack, with `stack` and `region` replacing samconfig.toml's when given."""
    return StackTarget(
        name=stack or stack_name_of(config_env, path),
        region=region or region_of(config_env, path),
        section=samconfig_section(config_env),
    )


def find_stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str] | None:
    """The stack's outputs by key, or None when there is no such stack (CloudFormation answers a
    ValidationError "Stack with id ... does not exist")."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            return None
        raise
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The stack's outputs by key; StackNotFound when it does not exist."""
    outputs = find_stack_outputs(cloudformation, stack_name)
    if outputs is None:
        raise StackNotFound(f"stack {stack_name} does not exist (deploy it with dogbreed deploy)")
    return outputs
