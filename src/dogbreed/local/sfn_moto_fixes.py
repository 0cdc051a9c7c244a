"""Fixes to moto's Step Functions where it differs from AWS, patched in by `dogbreed.local.moto_shim`:

- `$$.Execution.StartTime` is an ISO-8601 string as on AWS (moto hands the context a datetime, which
  breaks intrinsic functions and DynamoDB string attributes built from it);
- SendTaskFailure keeps its `cause` (moto's response layer drops it);
- string literals in the definition are JSON strings: moto's ASL preprocessor keeps the escapes of
  some of them as written, so `inner_string_of` decodes them as JSON, as Step Functions does.

Each patch's original is kept here (`ORIGINAL_*`) for the shim's self-check and uninstall. Pinned
with moto (`dogbreed.local.moto_shim.MOTO_VERSION`).
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Final

from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.responses import StepFunctionResponse


def iso_timestamp(value: _dt.datetime) -> str:
    """AWS's context-object timestamp format: 2026-11-22T02:34:46.123Z."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


ORIGINAL_EVALUATION_ENVIRONMENT: Final = execution_worker.ExecutionWorker._get_evaluation_environment


def evaluation_environment(self: Any) -> Any:
    env = ORIGINAL_EVALUATION_ENVIRONMENT(self)
    execution: Any = env.states.context_object.context_object_data["Execution"]
    start = execution.get("StartTime")
    if isinstance(start, _dt.datetime):
        execution["StartTime"] = iso_timestamp(start)
    return env


ORIGINAL_SEND_TASK_FAILURE: Final = StepFunctionResponse.send_task_failure


def send_task_failure(self: Any) -> Any:
    """SendTaskFailure with its `cause` (moto's response layer drops it; its backend takes it)."""
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


ORIGINAL_INNER_STRING_OF: Final = Preprocessor._inner_string_of


def inner_string_of(parser_rule_context: Any) -> str | None:
    """A string literal's value, its JSON escapes decoded (identifiers and names are unaffected)."""
    text = ORIGINAL_INNER_STRING_OF(parser_rule_context)
    raw = parser_rule_context.getText() if text is not None else None
    if raw is not None and len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        try:
            decoded: str = json.loads(raw)
            return decoded
        except ValueError:
            return text
    return text
