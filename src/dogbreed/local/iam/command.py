"""`dogbreed local iam-report`: per principal of the running local stack, the AWS calls it made (action,
resource, count, and where the call is known from), whether each is allowed by template.yaml's
policies, and the granted permissions no call used, with docs/security.md's justification.

Exit status: 0 when every call is allowed and every unused grant is justified; 1 otherwise (a denied
or unjudged call, a call by a role outside the stack, or an unjustified grant); 2 when no cloud runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def register(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    report = commands.add_parser(
        "iam-report",
        help="every call of every role of the running stack, evaluated against template.yaml's policies",
    )
    common(report)
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from dogbreed.local.cloud.lifecycle import running_state
    from dogbreed.local.iam.collect import local_iam_report

    state = running_state(args.state_dir)
    if state is None:
        print(f"no local cloud runs with state in {args.state_dir} (dogbreed local up / demo first)")
        return 2
    from dogbreed.aws.iam.report import render

    report = local_iam_report(state)
    if args.json:
        print(json.dumps(to_json(report), indent=2))
    else:
        print(render(report))
    failed = report.denied or report.unjudged or report.unattributed or report.unjustified
    return 1 if failed else 0


def to_json(report: Any) -> dict[str, Any]:
    principals = []
    for item in report.principals:
        principals.append(
            {
                "role": item.principal.logical_id,
                "arn": item.principal.arn,
                "used_by": list(item.principal.used_by),
                "calls": [
                    {"action": action, "resource": resource, "origin": origin, "count": count}
                    for (action, resource, origin), count in sorted(item.calls.items())
                ],
                "denied": [str(decision.request) for _call, decision in item.denied],
                "unused": [
                    {"grant": str(grant), "justification": why.reason if why else None}
                    for grant, why in item.unused
                ],
            }
        )
    return {
        "principals": principals,
        "unjudged": [f"{call.role_arn}: {call.service} {call.operation}" for call in report.unjudged],
        "unattributed": sorted({call.role_arn for call in report.unattributed}),
    }
