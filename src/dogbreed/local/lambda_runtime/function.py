"""What the local Lambda service knows about one function: the template's properties that decide how
it runs, and the name forms callers use for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
LATEST = "$LATEST"


@dataclass(frozen=True)
class EventInvokeConfig:
    """A function's asynchronous invocation settings (AWS::Lambda::EventInvokeConfig; Lambda's
    defaults when the template sets none). Destinations are ARNs."""

    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 21600
    on_failure: str | None = None
    on_success: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """A function as deployed: `code_dir` (its CodeUri) goes first on the worker's sys.path, then its
    `layer_dirs` (the layers' contents, Lambda's /opt/python), `handler` is "module.path.function",
    `environment` holds the template's variables (and the local cloud's additions). Lambda's defaults
    apply where the template is silent."""

    name: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: int = 3
    memory_mb: int = 128
    runtime: str = "python3.12"
    logical_id: str = ""
    role_arn: str = ""
    arn: str = ""
    reserved_concurrency: int | None = None
    event_invoke_config: EventInvokeConfig = field(default_factory=EventInvokeConfig)

    @property
    def function_arn(self) -> str:
        return self.arn or f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"

    def qualified_arn(self, qualifier: str | None = None) -> str:
        return f"{self.function_arn}:{qualifier or LATEST}"

    @property
    def execution_role_arn(self) -> str:
        return self.role_arn or f"arn:aws:iam::{ACCOUNT_ID}:role/{self.name}-role"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


def split_function_name(name_or_arn: str) -> tuple[str, str | None]:
    """(function name, qualifier) of any form Invoke accepts: `my-function`, `my-function:live`,
    `123456789012:function:my-function` or the full (qualified) ARN."""
    tail = name_or_arn.split(":function:", 1)[-1]
    name, _, qualifier = tail.partition(":")
    return name, qualifier or None
