"""Answering a run that waits for manual approval (ApprovalMode=manual).

The state machine's RequestApproval state publishes the request to the alarm topic with
`sns:publish.waitForTaskToken`; the request (run id, candidate and production metrics, task token) is
also in the execution's history as that task's parameters. Approving sends SendTaskSuccess with who
decided, why and when; rejecting sends SendTaskFailure with `APPROVAL_REJECTED_ERROR`, which the
state machine catches. Both are recorded by the run (runs table) and in the model registry.

IAM for the operator: states:ListExecutions on the state machine, states:GetExecutionHistory on its
executions, states:SendTaskSuccess / states:SendTaskFailure. The `dogbreed approve|reject|approvals`
commands (`dogbreed.commands.approval`) also read the stack's outputs (cloudformation:DescribeStacks)
and sign the answer with sts:GetCallerIdentity, which needs no permission.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Final

APPROVAL_STATE: Final = "RequestApproval"
# The error name SendTaskFailure uses for a rejection (the state machine catches exactly this name).
APPROVAL_REJECTED_ERROR: Final = "ApprovalRejected"


class ApprovalError(LookupError):
    """No run with that id is waiting for approval."""


@dataclass(frozen=True)
class PendingApproval:
    run_id: str
    execution_arn: str
    task_token: str
    request: dict[str, Any]
    requested_at: dt.datetime | None = None  # when the request was published (the task was scheduled)


def _approval_requests(sfn: Any, execution_arn: str) -> list[tuple[dict[str, Any], dt.datetime | None]]:
    """The RequestApproval task's published messages in this execution with their times, newest first."""
    requests = []
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=execution_arn, reverseOrder=True):
        for event in page["events"]:
            details = event.get("taskScheduledEventDetails")
            if not details or not details.get("resource", "").startswith("publish"):
                continue
            parameters = json.loads(details.get("parameters") or "{}")
            try:
                message = json.loads(parameters.get("Message", ""))
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("kind") == "approval-request":
                requests.append((message, event.get("timestamp")))
    return requests


def pending_approvals(sfn: Any, state_machine_arn: str) -> list[PendingApproval]:
    """Every run of the pipeline now waiting for an answer."""
    pending = []
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        for execution in page["executions"]:
            requests = _approval_requests(sfn, execution["executionArn"])
            if requests:
                request, requested_at = requests[0]
                pending.append(
                    PendingApproval(
                        request["run_id"],
                        execution["executionArn"],
                        request["task_token"],
                        request,
                        requested_at,
                    )
                )
    return pending


def find_pending(sfn: Any, state_machine_arn: str, run_id: str) -> PendingApproval:
    for approval in pending_approvals(sfn, state_machine_arn):
        if approval.run_id == run_id:
            return approval
    raise ApprovalError(f"no run {run_id} is waiting for approval")


def _answer(by: str, reason: str) -> dict[str, str]:
    return {"by": by, "reason": reason, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def approve(sfn: Any, pending: PendingApproval, *, by: str, reason: str = "") -> dict[str, str]:
    """Send the approval; returns the answer sent ({by, reason, at})."""
    answer = _answer(by, reason)
    sfn.send_task_success(taskToken=pending.task_token, output=json.dumps(answer))
    return answer


def reject(sfn: Any, pending: PendingApproval, *, by: str, reason: str) -> dict[str, str]:
    """Send the rejection; returns the answer sent ({by, reason, at})."""
    answer = _answer(by, reason)
    sfn.send_task_failure(
        taskToken=pending.task_token, error=APPROVAL_REJECTED_ERROR, cause=json.dumps(answer)
    )
    return answer
