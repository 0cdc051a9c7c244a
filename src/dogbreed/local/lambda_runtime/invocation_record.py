"""The invocation record Lambda sends to an asynchronous invocation's destination (developer guide,
"Capturing records of Lambda asynchronous invocations"):

    {"version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
     "requestContext": {"requestId", "functionArn" (qualified), "condition", "approximateInvokeCount"},
     "requestPayload": <the event>,
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "responsePayload": <the function's response or error>}

`condition` is `Success` (OnSuccess), `RetriesExhausted` or `EventAgeExceeded` (OnFailure). An event
that never ran (it aged out waiting for concurrency) has no response: the record then leaves
`responseContext` and `responsePayload` out. For SQS and SNS destinations the record is the message.

An SQS destination gets the record as the message body; a dead-letter queue (an EventBridge rule
target's, or a function's DeadLetterConfig) gets the bare event instead. The S3-drop function's queue
receives both, so every reader (the load benchmark, redrive) takes the event with
`event_from_dead_letter`.

Pure functions; the local cloud keeps one copy of this shape (docs/local-cloud.md), checked against
AWS's documented example (tests/unit/test_lambda_invocation_record.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"


@dataclass(frozen=True)
class InvocationResponse:
    """What the last invocation of the event answered."""

    payload: bytes
    function_error: str | None
    executed_version: str = "$LATEST"
    status_code: int = 200


def _document(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def iso_millis(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    approximate_invoke_count: int,
    request_payload: bytes,
    response: InvocationResponse | None,
    timestamp: dt.datetime,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_millis(timestamp),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": approximate_invoke_count,
        },
        "requestPayload": _document(request_payload),
    }
    if response is not None:
        context: dict[str, Any] = {
            "statusCode": response.status_code,
            "executedVersion": response.executed_version,
        }
        if response.function_error:
            context["functionError"] = response.function_error
        record["responseContext"] = context
        record["responsePayload"] = _document(response.payload)
    return record


_RECORD_KEYS = frozenset({"version", "timestamp", "requestContext", "requestPayload"})


def is_invocation_record(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) >= _RECORD_KEYS
        and body.get("version") == "1.0"
        and isinstance(body.get("requestContext"), dict)
    )


def event_from_dead_letter(body: Any) -> Any:
    """The original event of a dead-letter message body (parsed JSON): the record's `requestPayload`
    for an invocation record, else the body itself (a dead-letter queue's bare event)."""
    return body["requestPayload"] if is_invocation_record(body) else body
