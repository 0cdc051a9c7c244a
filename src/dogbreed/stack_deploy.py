"""Deploying the stack with its training code (`dogbreed deploy`), on AWS through the SAM CLI or into
the local cloud through its own deployer: the same steps, in an order that keeps every run's code in
place.

The pipeline's first task checks that `s3://<DataBucket>/code/<TrainingCodeVersion>/sourcedir.tar.gz`
exists; the deploy passes `TrainingCodeVersion=<content version>` (`dogbreed.packaging`), so a changed
`training_job/` ships under a new key and the runs already under way keep theirs.

1. build (`sam build`): it fails before anything changes in the account;
2. if the stack exists, upload the package to its data bucket under the new version: the object is in
   place before the deploy makes the version current;
3. deploy with `TrainingCodeVersion=<version>`;
4. upload to the `TrainingCodeS3Uri` the stack now outputs if it is not there yet: on a first deploy
   the bucket only exists after step 3. No run can need it before: a run starts from a dataset's
   `manifest.json` in that same bucket, and one started by hand in between stops at
   CheckTrainingCode, before any paid compute, with the missing key as its cause.

Uploads are idempotent: the key carries the content hash, so an object already there is the same code.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from botocore.exceptions import ClientError

from dogbreed import REPO_ROOT
from dogbreed.packaging import ARCHIVE_NAME, SourceArchive
from dogbreed.stack_target import StackTarget, find_stack_outputs

CODE_VERSION_PARAMETER: Final = "TrainingCodeVersion"
CODE_URI_OUTPUT: Final = "TrainingCodeS3Uri"
DATA_BUCKET_OUTPUT: Final = "DataBucketName"
# Where `make sam-install` puts the SAM CLI (the Makefile's SAM variable); this variable names another.
PROJECT_SAM: Final = REPO_ROOT / ".venv-sam" / "bin" / "sam"
SAM_CLI_ENV: Final = "DOGBREED_SAM_CLI"

Log = Callable[[str], None]


class DeployError(RuntimeError):
    """An expected failure, with what to do about it: the CLI prints it without a traceback."""


class StackDeployer(Protocol):
    """Builds and deploys one stack (on AWS, or into the local cloud) and reads its outputs."""

    @property
    def stack_name(self) -> str: ...

    def build(self) -> None: ...

    def outputs(self) -> dict[str, str] | None:
        """The stack's outputs; None when it is not deployed."""
        ...

    def deploy(self, overrides: dict[str, str]) -> None: ...

    def s3(self) -> Any: ...


@dataclass(frozen=True)
class CodeUpload:
    uri: str
    uploaded: bool  # False: the same package was there already


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    outputs: dict[str, str]
    code_version: str
    code: CodeUpload
    uploads: list[CodeUpload] = field(default_factory=list)


def training_code_key(version: str) -> str:
    """The key template.yaml gives the package (`code/${TrainingCodeVersion}/sourcedir.tar.gz`)."""
    return f"code/{version}/{ARCHIVE_NAME}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise DeployError(f"{uri} is not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def ensure_training_code(s3: Any, bucket: str, key: str, archive: SourceArchive) -> CodeUpload:
    """Put the package at s3://bucket/key unless it is there already."""
    uri = f"s3://{bucket}/{key}"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return CodeUpload(uri, uploaded=False)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=archive.data,
        ContentType="application/gzip",
        Metadata={"content-sha256": archive.content_hash},
    )
    return CodeUpload(uri, uploaded=True)


def deploy_with_training_code(
    deployer: StackDeployer, overrides: dict[str, str], archive: SourceArchive, *, log: Log = print
) -> DeployResult:
    """Build, upload the package where the stack already has a bucket, deploy with the package's
    version, and make sure the package is where the deployed stack looks for it."""
    if CODE_VERSION_PARAMETER in overrides:
        raise DeployError(
            f"{CODE_VERSION_PARAMETER} is set by dogbreed deploy from the training code's content; "
            "leave it out of the overrides"
        )
    deployer.build()
    uploads: list[CodeUpload] = []
    before = deployer.outputs()
    if before and before.get(DATA_BUCKET_OUTPUT):
        key = training_code_key(archive.version)
        early = ensure_training_code(deployer.s3(), before[DATA_BUCKET_OUTPUT], key, archive)
        if early.uploaded:
            log(f"training code {archive.version} -> {early.uri}")
            uploads.append(early)
    deployer.deploy({**overrides, CODE_VERSION_PARAMETER: archive.version})
    after = deployer.outputs()
    if not after or CODE_URI_OUTPUT not in after:
        raise DeployError(
            f"stack {deployer.stack_name} has no {CODE_URI_OUTPUT} output after the deploy "
            "(was the change set declined?)"
        )
    code = ensure_training_code(deployer.s3(), *split_s3_uri(after[CODE_URI_OUTPUT]), archive)
    if code.uploaded:
        log(f"training code {archive.version} -> {code.uri}")
        uploads.append(code)
    return DeployResult(deployer.stack_name, after, archive.version, code, uploads)


# --- AWS, through the SAM CLI ----------------------------------------------------------------------


def find_sam() -> str:
    """The SAM CLI: $DOGBREED_SAM_CLI, else the project's (`make sam-install`), else one on PATH."""
    for candidate in (os.environ.get(SAM_CLI_ENV), PROJECT_SAM):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("sam")
    if found is None:
        raise DeployError(
            "the SAM CLI is not installed: run `make sam-install` (it creates .venv-sam/), install "
            "aws-sam-cli, or point DOGBREED_SAM_CLI at one"
        )
    return found


def format_overrides(overrides: dict[str, str]) -> str:
    """`Key=Value ...` as `sam deploy --parameter-overrides` parses it (values with spaces quoted)."""
    return " ".join(
        f'{key}="{value}"' if any(char.isspace() for char in value) else f"{key}={value}"
        for key, value in overrides.items()
    )


def account_id(session: Any) -> str:
    """The caller's account (STS GetCallerIdentity): fails early, and plainly, without credentials."""
    from botocore.exceptions import BotoCoreError, NoCredentialsError

    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except NoCredentialsError as error:
        raise DeployError(
            "no AWS credentials found: run `aws configure` (or `aws sso login`, or set AWS_PROFILE)"
        ) from error
    except ClientError as error:
        details = error.response.get("Error", {})
        raise DeployError(
            f"AWS refused your credentials: {details.get('Code')}: {details.get('Message')}"
        ) from error
    except BotoCoreError as error:
        raise DeployError(f"cannot reach AWS: {error}") from error


def stack_failure(cloudformation: Any, stack_name: str, since: dt.datetime) -> str | None:
    """The first failed resource event of the stack since `since`: what the deploy tripped on."""
    try:
        events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    except ClientError:
        return None
    failed = [
        event
        for event in events
        if event["Timestamp"] >= since
        and event.get("ResourceStatus", "").endswith("_FAILED")
        and event.get("ResourceStatusReason")
    ]
    if not failed:
        return None
    first = min(failed, key=lambda event: event["Timestamp"])
    return f"{first['LogicalResourceId']}: {first['ResourceStatusReason']}"


def _run(command: list[str]) -> int:
    env = {**os.environ}
    env.setdefault("SAM_CLI_TELEMETRY", "0")
    return subprocess.call(command, cwd=REPO_ROOT, env=env)


@dataclass
class SamDeployer:
    """`sam build` and `sam deploy` with samconfig.toml's environment (never --guided), and the
    stack's outputs through CloudFormation."""

    target: StackTarget
    session: Any
    sam: str
    confirm: bool = True
    run: Callable[[list[str]], int] = _run

    @property
    def stack_name(self) -> str:
        return self.target.name

    def _scope(self) -> list[str]:
        return [
            "--config-env",
            self.target.section,
            *(["--region", self.target.region] if self.target.region else []),
        ]

    def build(self) -> None:
        code = self.run([self.sam, "build", "--config-env", self.target.section])
        if code != 0:
            raise DeployError(f"sam build failed (exit {code}); its output above says why")

    def outputs(self) -> dict[str, str] | None:
        return find_stack_outputs(self.session.client("cloudformation"), self.target.name)

    def deploy(self, overrides: dict[str, str]) -> None:
        started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        command = [
            self.sam,
            "deploy",
            *self._scope(),
            "--stack-name",
            self.target.name,
            "--parameter-overrides",
            format_overrides(overrides),
            # A deploy with nothing new (the same code and settings) is a success, not an error.
            "--no-fail-on-empty-changeset",
            *([] if self.confirm else ["--no-confirm-changeset"]),
        ]
        code = self.run(command)
        if code != 0:
            reason = stack_failure(self.session.client("cloudformation"), self.target.name, started)
            raise DeployError(
                f"sam deploy of stack {self.target.name} failed (exit {code})"
                + (f"; first failure: {reason}" if reason else "")
                + f"; events: aws cloudformation describe-stack-events --stack-name {self.target.name}"
                + (f" --region {self.target.region}" if self.target.region else "")
            )

    def s3(self) -> Any:
        return self.session.client("s3")
