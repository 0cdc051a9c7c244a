"""`dogbreed deploy [--check]`: build and deploy the stack, upload the training code, print the
outputs and the next step; `--check` asks the account what a first run needs (docs/deploy.md).

The steps and their order are `dogbreed.stack_deploy`, the checks `dogbreed.preflight`, the stack,
region and outputs `dogbreed.stack_target`. The target is AWS (samconfig.toml's environment) unless
`--local` is given or AWS_ENDPOINT_URL points at the running local cloud, which has no
CloudFormation for SAM templates: there the cloud's own deployer deploys template.yaml.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dogbreed.local.cloud import state as cloud_state
from dogbreed.stack_target import CONFIG_ENVS, DEFAULT_CONFIG_ENV, StackConfigError
from dogbreed.terminal import text_table

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="build and deploy the stack and upload the training code (--check: the preflight)",
        description=(
            "Runs `sam build` and `sam deploy` with samconfig.toml's environment (no --guided), with "
            "TrainingCodeVersion set to the training code's content version, uploads the training code "
            "package to the stack's data bucket, and prints the stack's outputs and the next step. With "
            "--local (or AWS_ENDPOINT_URL pointing at the running local cloud) it deploys into the local "
            "cloud instead. --check deploys nothing: it asks the account what a first pipeline run needs "
            "(stack name, region and images, Lambda concurrency, SageMaker quotas) and exits 1 when "
            "something must be fixed or raised."
        ),
    )
    deploy.add_argument(
        "--config-env",
        choices=sorted(CONFIG_ENVS),
        default=None,
        help="samconfig.toml environment: stack name, region, parameters (default dev)",
    )
    deploy.add_argument("--stack", help="stack name (instead of samconfig.toml's)")
    deploy.add_argument("--region", help="AWS region (instead of samconfig.toml's)")
    deploy.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters on top of the environment's",
    )
    deploy.add_argument(
        "--no-confirm", action="store_true", help="execute the change set without asking (sam deploy)"
    )
    deploy.add_argument("--check", action="store_true", help="the preflight: deploy nothing")
    deploy.add_argument(
        "--local",
        action="store_true",
        help="the running local cloud (implied when AWS_ENDPOINT_URL points at it)",
    )
    deploy.add_argument(
        "--state-dir",
        type=Path,
        default=cloud_state.DEFAULT_STATE_DIR,
        help="local cloud (default .local-cloud/)",
    )
    deploy.set_defaults(handler=_handle)


# --- the target ------------------------------------------------------------------------------------


def parse_overrides(items: list[str]) -> dict[str, str]:
    from dogbreed.stack_deploy import DeployError

    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"parameter override {item!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides


def _endpoint(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return ("127.0.0.1" if host in LOCAL_HOSTS else host), parts.port


def local_cloud_target(args: argparse.Namespace) -> cloud_state.CloudState | None:
    """The running local cloud when it is the target (--local, or AWS_ENDPOINT_URL is its address);
    None for AWS. AWS_ENDPOINT_URL pointing anywhere else is an error: sam deploy cannot go there."""
    from dogbreed.local.cloud.lifecycle import running_state
    from dogbreed.stack_deploy import DeployError

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not args.local and not endpoint:
        return None
    state = running_state(args.state_dir)
    if args.local:
        if state is None:
            raise DeployError(f"the local cloud is not up in {args.state_dir} (dogbreed local up)")
    elif state is None or _endpoint(str(endpoint)) != _endpoint(state.aws_url):
        raise DeployError(
            f"AWS_ENDPOINT_URL={endpoint} is not a running dogbreed local cloud ({args.state_dir}); "
            "there is no CloudFormation for SAM templates there. Unset it to deploy to AWS, or start "
            "the local cloud (dogbreed local up) and give its --state-dir"
        )
    if args.stack or args.region or args.config_env:
        raise DeployError(
            f"the local cloud deploys its own stack ({state.stack_name}, {cloud_state.REGION}) with its "
            "small settings plus --parameter-overrides; --config-env, --stack and --region are for AWS"
        )
    return state


@dataclass
class LocalCloudDeployer:
    """The local cloud's deployer (its control API's deploy route) behind `StackDeployer`."""

    state: cloud_state.CloudState
    state_dir: Path

    @property
    def stack_name(self) -> str:
        return self.state.stack_name

    def build(self) -> None:
        """Nothing to build: the local cloud runs the working tree's code as it is."""

    def outputs(self) -> dict[str, str] | None:
        from dogbreed.local.cloud.lifecycle import running_state

        state = running_state(self.state_dir)
        return dict(state.outputs) if state and state.outputs else None

    def deploy(self, overrides: dict[str, str]) -> None:
        from dogbreed.local.cloud.lifecycle import deploy_stack
        from dogbreed.stack_deploy import DeployError

        try:
            deploy_stack(self.state, overrides)
        except RuntimeError as error:
            raise DeployError(f"the local cloud refused the deploy: {error}") from error

    def s3(self) -> Any:
        return cloud_state.local_session().client("s3", endpoint_url=self.state.aws_url)


# --- output ----------------------------------------------------------------------------------------


def format_outputs(outputs: dict[str, str]) -> str:
    return text_table(("OUTPUT", "VALUE"), sorted(outputs.items()))


def next_step(outputs: dict[str, str], *, local: bool) -> str:
    bucket = outputs.get("DataBucketName", "<DataBucketName>")
    prefix = f"s3://{bucket}/datasets/<id>"
    lines = [
        "Next: upload a dataset; its manifest.json, written last, starts the training pipeline.",
        *(
            ['  eval "$(dogbreed local env)"          # point the AWS CLI at the local cloud']
            if local
            else []
        ),
        "  dogbreed data synth --out <dir>       # or: dogbreed data fetch --out <dir> (the real dogImages)",
        f"  aws s3 sync <dir> {prefix}/ --exclude manifest.json",
        f"  aws s3 cp <dir>/manifest.json {prefix}/manifest.json",
    ]
    return "\n".join(lines)


def format_checks(checks: list[Any]) -> str:
    """The preflight table: one row per check, the action to take under each that is not OK."""
    from dogbreed.preflight.account import Status

    lines = text_table(
        ("CHECK", "VALUE", "NEEDED", "STATUS"),
        [(check.name, check.value, check.needed, str(check.status)) for check in checks],
    ).splitlines()
    out = lines[:2]  # the headers and their rule
    for line, check in zip(lines[2:], checks, strict=True):
        out.append(line)
        if check.action:
            out.append(f"    -> {check.action}")
    counts = {status: sum(check.status == status for check in checks) for status in Status}
    if counts[Status.FIX] or counts[Status.RAISE]:
        summary = (
            f"{counts[Status.FIX]} to fix, {counts[Status.RAISE]} to raise, "
            f"{counts[Status.UNVERIFIED]} unverified: a first run would fail until they are done"
        )
    elif counts[Status.UNVERIFIED]:
        summary = f"nothing to fix; {counts[Status.UNVERIFIED]} could not be verified (see above)"
    else:
        summary = "ready for a first run"
    return "\n".join([*out, "", summary])


# --- handlers ------------------------------------------------------------------------------------


def _handle(args: argparse.Namespace) -> int:
    from dogbreed.stack_deploy import DeployError
    from dogbreed.template_stack import TemplateError

    try:
        overrides = parse_overrides(args.parameter_overrides)
        local = local_cloud_target(args)
        if args.check:
            return _check(args, local, overrides)
        return _deploy(args, local, overrides)
    except (DeployError, StackConfigError, TemplateError) as error:
        print(f"dogbreed deploy: {error}", file=sys.stderr)
        return 1


def _aws_target(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """(target, session, region) for AWS, with the credentials checked."""
    from dogbreed.stack_deploy import DeployError, account_id
    from dogbreed.stack_target import stack_target

    target = stack_target(args.config_env or DEFAULT_CONFIG_ENV, stack=args.stack, region=args.region)
    session = target.session()
    if not session.region_name:
        raise DeployError("no region: set region in samconfig.toml or pass --region")
    account = account_id(session)
    print(f"stack {target.name}, account {account}, region {session.region_name}", flush=True)
    return target, session, str(session.region_name)


def _deploy(args: argparse.Namespace, local: cloud_state.CloudState | None, cli: dict[str, str]) -> int:
    from dogbreed.packaging import source_tarball
    from dogbreed.preflight.stack_settings import check_stack_name
    from dogbreed.stack_deploy import DeployError, SamDeployer, deploy_with_training_code, find_sam
    from dogbreed.stack_target import samconfig_overrides

    deployer: Any
    if local is not None:
        deployer, overrides = LocalCloudDeployer(local, args.state_dir), cli
        print(f"local cloud stack {local.stack_name} ({local.aws_url})", flush=True)
    else:
        sam = find_sam()
        target, session, _ = _aws_target(args)
        named = check_stack_name(target.name)
        if named.status.blocks:
            raise DeployError(named.action)
        deployer = SamDeployer(target, session, sam, confirm=not args.no_confirm)
        overrides = {**samconfig_overrides(target.section), **cli}
    archive = source_tarball()
    result = deploy_with_training_code(deployer, overrides, archive)
    state = "uploaded" if result.uploads else "already in place"
    print(f"\nstack {result.stack_name} deployed")
    print(f"training code {result.code_version} {state}: {result.code.uri}\n")
    print(format_outputs(result.outputs))
    if local is not None:  # ApiUrl is the stack's AWS address; locally the HTTP API listens here
        print(f"\nlocal HTTP API: {local.api_url} (DOGBREED_API_URL in dogbreed local env)")
    print()
    print(next_step(result.outputs, local=local is not None))
    return 0


def _check(args: argparse.Namespace, local: cloud_state.CloudState | None, cli: dict[str, str]) -> int:
    from botocore.config import Config

    from dogbreed.preflight import run_checks
    from dogbreed.preflight.account import Account
    from dogbreed.template_stack import TemplateStack

    if local is not None:
        from dogbreed.local.cloud.stack import load_stack

        stack = load_stack({**local.parameters, **cli}, local.stack_name)
        session = cloud_state.local_session()
        # One attempt: an API the local cloud does not emulate answers at once, and says so.
        config = Config(retries={"max_attempts": 1, "mode": "standard"})

        def local_client(service: str, region: str | None = None) -> Any:
            return session.client(service, endpoint_url=local.aws_url, config=config)

        account = Account(local_client, cloud_state.REGION, local=True)
        print(f"local cloud stack {local.stack_name} ({local.aws_url}), region {cloud_state.REGION}")
    else:
        target, session, region = _aws_target(args)
        stack = TemplateStack.load(samconfig_env=target.section, parameters=cli, stack_name=target.name)

        def aws_client(service: str, in_region: str | None = None) -> Any:
            return session.client(service, region_name=in_region or region)

        account = Account(aws_client, region)
    checks = run_checks(stack, account)
    print(format_checks(checks))
    return 1 if any(check.status.blocks for check in checks) else 0
