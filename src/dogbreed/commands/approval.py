"""`dogbreed approve RUN`, `dogbreed reject RUN --reason TEXT` and `dogbreed approvals`: answer a
training run that waits for manual approval (ApprovalMode=manual; docs/pipeline.md, "Manual
approval"), on AWS (samconfig.toml's stack) or on the local cloud (`--local`).

The logic is `dogbreed.pipeline.approval`; this resolves the stack, signs the answer with the
caller's identity (STS GetCallerIdentity: the ARN the run record and the model registry keep) and
reports. An expected failure (no such run waiting, no cloud, no stack, AWS refusing) is one line on
stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from dogbreed.commands.stack_arguments import add_stack_target_arguments, stack_clients
from dogbreed.stack_target import StackConfigError
from dogbreed.terminal import text_table

PIPELINE_OUTPUT = "TrainingPipelineArn"


def register(subparsers: Any) -> None:
    approve = subparsers.add_parser(
        "approve",
        help="deploy the candidate of a run that waits for manual approval",
        description=(
            "Answers the run's RequestApproval task with SendTaskSuccess: the candidate is marked Approved "
            "in the model registry with your identity and reason, and the run deploys it."
        ),
    )
    approve.add_argument("run_id", metavar="RUN", help="the run id (dogbreed approvals lists them)")
    approve.add_argument("--reason", default="", help="why; recorded with the decision")
    add_stack_target_arguments(approve)
    approve.set_defaults(handler=_approve)

    reject = subparsers.add_parser(
        "reject",
        help="reject the candidate of a run that waits for manual approval",
        description=(
            "Answers the run's RequestApproval task with SendTaskFailure (ApprovalRejected): the candidate "
            "is marked Rejected in the model registry with your identity and reason; the endpoint keeps "
            "its model."
        ),
    )
    reject.add_argument("run_id", metavar="RUN", help="the run id (dogbreed approvals lists them)")
    reject.add_argument("--reason", required=True, help="why; recorded with the decision (required)")
    add_stack_target_arguments(reject)
    reject.set_defaults(handler=_reject)

    approvals = subparsers.add_parser(
        "approvals",
        help="the runs waiting for manual approval, with the candidate's and production's accuracy",
    )
    approvals.add_argument("--json", action="store_true", help="the waiting runs as JSON")
    add_stack_target_arguments(approvals)
    approvals.set_defaults(handler=_list)


def _fail(command: str, error: Exception) -> int:
    print(f"dogbreed {command}: {_one_line(error)}", file=sys.stderr)
    return 1


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _pipeline(args: argparse.Namespace) -> tuple[Callable[[str], Any], str]:
    clients, outputs = stack_clients(args)
    if PIPELINE_OUTPUT not in outputs:
        raise StackConfigError(f"the stack has no {PIPELINE_OUTPUT} output (is it a dogbreed stack?)")
    return clients, outputs[PIPELINE_OUTPUT]


def _answer(args: argparse.Namespace, decision: str) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from dogbreed.pipeline import approval

    command = "approve" if decision == "approved" else "reject"
    try:
        clients, pipeline_arn = _pipeline(args)
        sfn = clients("stepfunctions")
        pending = approval.find_pending(sfn, pipeline_arn, args.run_id)
        by = str(clients("sts").get_caller_identity()["Arn"])
        send = approval.approve if decision == "approved" else approval.reject
        answer = send(sfn, pending, by=by, reason=args.reason)
    except (LookupError, StackConfigError, BotoCoreError, ClientError) as error:
        return _fail(command, error)
    print(f"run {args.run_id}: {decision}")
    print(f"  model   {pending.request.get('model_version', '?')}")
    print(f"  by      {answer['by']}")
    print(f"  at      {answer['at']}")
    if answer["reason"]:
        print(f"  reason  {answer['reason']}")
    follow = "dogbreed local status" if args.local else f"the execution {pending.execution_arn}"
    print(f"the run goes on{' to deploy' if decision == 'approved' else ''}: follow it with {follow}")
    return 0


def _approve(args: argparse.Namespace) -> int:
    return _answer(args, "approved")


def _reject(args: argparse.Namespace) -> int:
    return _answer(args, "rejected")


def _accuracy(model: Any) -> str:
    if not isinstance(model, dict) or model.get("test_acc") is None:
        return "-"
    return f"{float(model['test_acc']):.3f}"


def _list(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from dogbreed.pipeline import approval

    try:
        clients, pipeline_arn = _pipeline(args)
        pending = approval.pending_approvals(clients("stepfunctions"), pipeline_arn)
    except (LookupError, StackConfigError, BotoCoreError, ClientError) as error:
        return _fail("approvals", error)
    rows = [
        {
            "run_id": item.run_id,
            "model_version": item.request.get("model_version"),
            "candidate": item.request.get("candidate"),
            "production": item.request.get("production"),
            "requested_at": item.requested_at.isoformat() if item.requested_at else None,
            "execution_arn": item.execution_arn,
        }
        for item in pending
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no run is waiting for approval")
        return 0
    headers = ("RUN", "CANDIDATE", "SERVING", "WAITING SINCE", "MODEL")
    table = [
        (
            row["run_id"],
            _accuracy(row["candidate"]),
            _accuracy(row["production"]),
            row["requested_at"] or "-",
            row["model_version"],
        )
        for row in rows
    ]
    print(text_table(headers, table, right=(1, 2)))
    print("answer with: dogbreed approve RUN [--reason TEXT] | dogbreed reject RUN --reason TEXT")
    return 0
