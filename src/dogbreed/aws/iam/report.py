"""The IAM report: every call each principal made, evaluated against that principal's policies, and
the permissions its policies grant that no call used, with the justification docs/security.md gives.

    report = build_report(stack.principals, calls, justifications=read_justifications(SECURITY_MD))
    report.denied            # [] or the calls the template's policies deny
    print(render(report))
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dogbreed import REPO_ROOT
from dogbreed.aws.iam.policy_evaluation import AuthorizationRequest, Decision, Statement, _glob, evaluate
from dogbreed.aws.iam.service_behaviour import DOCS, ServiceCall
from dogbreed.aws.iam.service_reference import service_reference
from dogbreed.aws.iam.stack_principals import Principal

SECURITY_MD: Final = REPO_ROOT / "docs" / "security.md"
JUSTIFICATION_TABLE_HEADER: Final = "| role | statement | actions | why no run uses it |"


@dataclass(frozen=True)
class Grant:
    """One (action, resource) pair an Allow statement grants."""

    role: str
    statement: str  # the Sid, or the policy name for statements without one
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.statement}: {self.action} on {self.resource}"


@dataclass(frozen=True)
class Justification:
    role: str  # glob over role logical ids
    statements: tuple[str, ...]  # globs over statement names
    actions: tuple[str, ...]  # globs over actions
    reason: str

    def covers(self, grant: Grant) -> bool:
        return (
            _glob(self.role, grant.role)
            and any(_glob(statement, grant.statement) for statement in self.statements)
            and any(_glob(action, grant.action, ignore_case=True) for action in self.actions)
        )


@dataclass
class PrincipalReport:
    """`calls`: (action, resource, origin) -> count, where resource is the granting statement's
    resource pattern when it names many (an S3 prefix), else the ARN; `resources` the distinct ARNs."""

    principal: Principal
    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    resources: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    denied: list[tuple[ServiceCall, Decision]] = field(default_factory=list)
    unused: list[tuple[Grant, Justification | None]] = field(default_factory=list)
    inapplicable: list[Grant] = field(default_factory=list)


@dataclass
class IamReport:
    principals: list[PrincipalReport]
    unattributed: list[ServiceCall] = field(default_factory=list)  # calls by roles not in the stack
    unjudged: list[ServiceCall] = field(default_factory=list)  # calls no rule maps to IAM

    @property
    def denied(self) -> list[tuple[ServiceCall, Decision]]:
        return [item for report in self.principals for item in report.denied]

    @property
    def unjustified(self) -> list[tuple[str, Grant]]:
        return [
            (report.principal.logical_id, grant)
            for report in self.principals
            for grant, why in report.unused
            if why is None
        ]


def _statement_name(policy_name: str, statement: Statement) -> str:
    return statement.sid or policy_name


def build_report(
    principals: Mapping[str, Principal],
    calls: Iterable[ServiceCall],
    justifications: Iterable[Justification] = (),
) -> IamReport:
    reports = {arn: PrincipalReport(principal) for arn, principal in principals.items()}
    decisions: dict[str, list[Decision]] = {arn: [] for arn in principals}
    cache: dict[tuple[str, AuthorizationRequest], Decision] = {}
    out = IamReport(list(reports.values()))
    for call in calls:
        if not call.requests:
            out.unjudged.append(call)
            continue
        report = reports.get(call.role_arn)
        if report is None:
            out.unattributed.append(call)
            continue
        for request in call.requests:
            key = (call.role_arn, request)
            if key not in cache:
                cache[key] = evaluate(report.principal.policies, request)
                decisions[call.role_arn].append(cache[key])
            decision = cache[key]
            row = (request.action, _shown_resource(report.principal, decision), call.origin)
            report.calls[row] += 1
            report.resources.setdefault(row, set()).add(request.resource)
            if not decision.allowed:
                report.denied.append((call, decision))
    rules = list(justifications)
    for arn, report in reports.items():
        used = [decision for decision in decisions[arn] if decision.allowed]
        for grant, applicable in _grants(report.principal):
            if not applicable:
                report.inapplicable.append(grant)
            elif not any(_uses(decision, grant) for decision in used):
                report.unused.append((grant, next((rule for rule in rules if rule.covers(grant)), None)))
    return out


def _shown_resource(principal: Principal, decision: Decision) -> str:
    """The granting statement's resource pattern when it has a wildcard inside an ARN (so the rows of
    one prefix are one line), else the request's resource."""
    request = decision.request
    if decision.allowed:
        for ref in decision.matched:
            statement = next(p for p in principal.policies if p.name == ref.policy).statements[ref.index]
            for pattern in statement.resources:
                if pattern != "*" and "*" in pattern and _glob(pattern, request.resource):
                    return pattern
    return request.resource


def _grants(principal: Principal) -> Iterable[tuple[Grant, bool]]:
    """Every (action, resource) an Allow statement grants, and whether the action acts on that kind of
    resource at all (the Service Authorization Reference's resource types)."""
    reference = service_reference()
    seen: set[Grant] = set()
    for policy in principal.policies:
        for statement in policy.statements:
            if statement.effect != "Allow" or statement.not_actions or statement.not_resources:
                continue
            for pattern in statement.actions:
                prefix, _, name = pattern.partition(":")
                names = [n for n in reference.actions(prefix) if _glob(name, n, ignore_case=True)] or [name]
                for action in names:
                    for resource in statement.resources:
                        grant = Grant(
                            principal.logical_id,
                            _statement_name(policy.name, statement),
                            f"{prefix}:{action}",
                            resource,
                        )
                        if grant in seen:
                            continue
                        seen.add(grant)
                        yield grant, _applies(prefix, action, resource)


def _applies(prefix: str, action: str, resource: str) -> bool:
    reference = service_reference()
    if resource == "*" or not reference.has_action(prefix, action):
        return True
    types = reference.resource_types(prefix, action)
    return not types or reference.resource_type_of(prefix, action, resource) is not None


def _uses(decision: Decision, grant: Grant) -> bool:
    request = decision.request
    return (
        _glob(grant.action, request.action, ignore_case=True)
        and _glob(grant.resource, request.resource)
        and any(ref.sid == grant.statement or ref.policy == grant.statement for ref in decision.matched)
    )


def read_justifications(path: Path = SECURITY_MD) -> list[Justification]:
    """The rows of the justification table in docs/security.md (the table under
    JUSTIFICATION_TABLE_HEADER): role, statement and actions are globs, comma-separated actions."""
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index(JUSTIFICATION_TABLE_HEADER) + 2
    except ValueError:
        return []
    rules = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4:
            continue
        role, statements, actions, reason = cells
        rules.append(Justification(role.strip("`"), _names(statements), _names(actions), reason))
    return rules


def _names(cell: str) -> tuple[str, ...]:
    return tuple(name.strip().strip("`") for name in re.split(r"[,\s]+", cell) if name.strip().strip("`"))


def render(report: IamReport) -> str:
    lines: list[str] = []
    for item in sorted(report.principals, key=lambda r: r.principal.logical_id):
        principal = item.principal
        total = sum(item.calls.values())
        verdict = "all allowed" if not item.denied else f"{len(item.denied)} DENIED"
        lines.append(f"== {principal.describe()}: {total} authorization requests, {verdict}")
        lines.append(f"   {principal.arn}")
        for (action, resource, origin), count in sorted(item.calls.items()):
            distinct = len(item.resources[(action, resource, origin)])
            many = f" ({distinct} resources)" if distinct > 1 else ""
            lines.append(f"   {count:5d}  {action:45s} {resource}{many}  [{origin}]")
        for call, decision in item.denied:
            lines.append(f"   DENIED {decision.request} ({decision.reason}; {call.service} {call.operation})")
        if item.unused:
            lines.append("   granted, not used in this run:")
            for grant, why in item.unused:
                reason = why.reason if why else "NO JUSTIFICATION in docs/security.md"
                lines.append(f"     - {grant}  -- {reason}")
        lines.append("")
    for call in report.unjudged:
        lines.append(f"UNJUDGED {call.role_arn}: {call.service} {call.operation}")
    if report.unattributed:
        roles = sorted({call.role_arn for call in report.unattributed})
        lines.append(f"calls by roles that are not the stack's: {', '.join(roles)}")
    sources = ", ".join(f"{key}: {url}" for key, url in sorted(DOCS.items()))
    lines.append(f"sources of the calls services make on a role's behalf: {sources}")
    return "\n".join(lines)
