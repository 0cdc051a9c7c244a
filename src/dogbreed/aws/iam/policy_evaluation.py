"""Identity-policy evaluation: is one authorization request (action, resource ARN, request context)
allowed by a principal's policies?

AWS's rules ("Policy evaluation logic" and "IAM JSON policy elements: Condition operators" in the IAM
User Guide, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
and .../reference_policies_elements_condition_operators.html):

- a statement applies when its Action (or NotAction), Resource (or NotResource) and every Condition
  match; Action matching ignores case, Resource matching does not; `*` and `?` are the wildcards;
- an applicable Deny wins over any Allow; without an applicable Allow the request is implicitly denied;
- within a Condition every operator and every key must match (AND), the values of one key are
  alternatives (OR); a key missing from the request fails the condition, except for the `...IfExists`
  operators and the negated operators (`StringNotEquals`, `ArnNotLike`, ...), which then hold, and
  `Null`, which tests for the key's presence.

moto's `IAMPolicy.is_action_permitted` (moto 5.2.5) is not used for the verdict: it evaluates only
`StringEquals` (every other operator, `StringLike` and `ArnLike` included, counts as satisfied), and it
turns an Allow statement whose condition does not match into an explicit Deny. Both matter for this
template (`StringLike` on `s3:prefix` and `cloudwatch:namespace`). tests/unit/test_iam_evaluation.py
checks this evaluator against moto's on condition-free policies and pins the two differences.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ContextValues = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class AuthorizationRequest:
    """What IAM evaluates for one call: `action` (`s3:GetObject`) on `resource` (an ARN or `*`), with
    the request's condition keys (`s3:prefix`, `iam:PassedToService`, ...)."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, action: str, resource: str, context: Mapping[str, Any] | None = None) -> AuthorizationRequest:
        pairs = []
        for key, value in sorted((context or {}).items()):
            values = (value,) if isinstance(value, str) else tuple(str(item) for item in value)
            pairs.append((key, values))
        return cls(action, resource, tuple(pairs))

    def context_values(self) -> dict[str, tuple[str, ...]]:
        return {key.lower(): values for key, values in self.context}

    def __str__(self) -> str:
        context = "".join(f" {key}={','.join(values)}" for key, values in self.context)
        return f"{self.action} on {self.resource}{context}"


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sid: str = ""

    @classmethod
    def parse(cls, statement: Mapping[str, Any]) -> Statement:
        def strings(key: str) -> tuple[str, ...]:
            value = statement.get(key, ())
            return (value,) if isinstance(value, str) else tuple(value)

        return cls(
            effect=str(statement["Effect"]),
            actions=strings("Action"),
            not_actions=strings("NotAction"),
            resources=strings("Resource"),
            not_resources=strings("NotResource"),
            conditions=dict(statement.get("Condition") or {}),
            sid=str(statement.get("Sid", "")),
        )

    def matches_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(_glob(pattern, action, ignore_case=True) for pattern in self.not_actions)
        return any(_glob(pattern, action, ignore_case=True) for pattern in self.actions)

    def matches_resource(self, resource: str) -> bool:
        if self.not_resources:
            return not any(_glob(pattern, resource) for pattern in self.not_resources)
        return any(_glob(pattern, resource) for pattern in self.resources)

    def applies(self, request: AuthorizationRequest) -> bool:
        return (
            self.matches_action(request.action)
            and self.matches_resource(request.resource)
            and conditions_hold(self.conditions, request.context_values())
        )


@dataclass(frozen=True)
class Policy:
    """One identity policy of a principal: an inline policy or an attached managed policy."""

    name: str
    statements: tuple[Statement, ...]
    source: str = "inline"  # "inline" or the managed policy's ARN

    @classmethod
    def parse(cls, name: str, document: Mapping[str, Any], source: str = "inline") -> Policy:
        raw = document.get("Statement", [])
        statements = [raw] if isinstance(raw, Mapping) else list(raw)
        return cls(name, tuple(Statement.parse(statement) for statement in statements), source)


@dataclass(frozen=True)
class StatementRef:
    policy: str
    index: int
    sid: str

    def __str__(self) -> str:
        return f"{self.policy}/{self.sid or f'#{self.index}'}"


@dataclass(frozen=True)
class Decision:
    request: AuthorizationRequest
    allowed: bool
    reason: str  # "allowed" | "explicit deny" | "no statement allows it"
    matched: tuple[StatementRef, ...] = ()  # the Allow statements that apply (or the Deny that won)


def evaluate(policies: Iterable[Policy], request: AuthorizationRequest) -> Decision:
    allows: list[StatementRef] = []
    for policy in policies:
        for index, statement in enumerate(policy.statements):
            if not statement.applies(request):
                continue
            ref = StatementRef(policy.name, index, statement.sid)
            if statement.effect == "Deny":
                return Decision(request, False, "explicit deny", (ref,))
            allows.append(ref)
    if allows:
        return Decision(request, True, "allowed", tuple(allows))
    return Decision(request, False, "no statement allows it")


# --- matching -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    flags = (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL
    return re.compile(f"^{regex}$", flags)


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return bool(_compiled(pattern, ignore_case).match(value))


def _string_equals(expected: str, actual: str) -> bool:
    return expected == actual


def _string_equals_ignore_case(expected: str, actual: str) -> bool:
    return expected.lower() == actual.lower()


def _string_like(expected: str, actual: str) -> bool:
    return _glob(expected, actual)


def _bool(expected: str, actual: str) -> bool:
    return expected.lower() == actual.lower()


# Operator -> (value test, negated). ArnLike/ArnEquals match like StringLike (wildcards per segment).
_OPERATORS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_string_like, False),
    "ArnLike": (_string_like, False),
    "ArnNotEquals": (_string_like, True),
    "ArnNotLike": (_string_like, True),
    "Bool": (_bool, False),
}


class UnsupportedCondition(ValueError):
    """A condition operator this evaluator does not implement: fail, never treat it as satisfied."""


def conditions_hold(
    conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, Sequence[str]]
) -> bool:
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            expected_values = [expected] if isinstance(expected, str | bool) else list(expected)
            actual = context.get(key.lower())
            if not _condition_holds(operator, [str(v) for v in expected_values], actual):
                return False
    return True


def _condition_holds(operator: str, expected: list[str], actual: Sequence[str] | None) -> bool:
    if operator == "Null":  # "true": the key must be absent; "false": present
        return all((value.lower() == "true") == (actual is None) for value in expected)
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator} is not evaluated here")
    test, negated = _OPERATORS[base]
    if actual is None:
        return if_exists or negated
    if qualifier == "ForAllValues":
        matched = [any(test(e, a) for e in expected) for a in actual]
        return all(not m for m in matched) if negated else all(matched)
    # single-valued keys and ForAnyValue: one of the request's values matches one of the policy's
    found = any(test(e, a) for e in expected for a in actual)
    return not found if negated else found
