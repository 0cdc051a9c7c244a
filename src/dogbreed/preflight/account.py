"""What the preflight checks have in common: a check's status and row, the account they ask, and asking
it (an answer that cannot be had is a `NoAnswer`, reported as UNVERIFIED with its reason)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

_DENIED_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)


class Status(StrEnum):
    OK = "OK"
    FIX = "FIX"  # a setting of yours to change
    RAISE = "RAISE"  # an account limit to raise
    UNVERIFIED = "UNVERIFIED"  # the account could not be asked

    @property
    def blocks(self) -> bool:
        return self in (Status.FIX, Status.RAISE)


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    needed: str
    status: Status
    action: str = ""


@dataclass(frozen=True)
class Account:
    """Where the checks ask: clients for the target's account (`client(service, region)`, region None
    for the target's), its region, and whether it is the local cloud (an API it does not emulate is
    then said to be not emulated)."""

    client: Callable[..., Any]
    region: str
    local: bool = False


class NoAnswer(Exception):
    """The account could not be asked; `denied` when the credentials lack the permission."""

    def __init__(self, reason: str, *, denied: bool = False) -> None:
        super().__init__(reason)
        self.denied = denied


def _action_name(client: Any, operation: str) -> str:
    api = client.meta.method_to_api_mapping.get(operation, operation)
    return f"{client.meta.service_model.signing_name}:{api}"


def _no_answer(account: Account, client: Any, operation: str, error: Exception) -> NoAnswer | None:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    action = _action_name(client, operation)
    if account.local:
        return NoAnswer(f"not emulated by the local cloud ({action}: {code or type(error).__name__})")
    if code in _DENIED_CODES:
        return NoAnswer(f"not verifiable with your credentials ({action} denied)", denied=True)
    return None


def ask(account: Account, service: str, operation: str, *, region: str | None = None, **request: Any) -> Any:
    """One API call; NoAnswer when access is denied or the local cloud does not answer it."""
    client = account.client(service, region)
    try:
        return getattr(client, operation)(**request)
    except (ClientError, BotoCoreError) as error:
        no_answer = _no_answer(account, client, operation, error)
        if no_answer is None:
            raise
        raise no_answer from error


def ask_pages(account: Account, service: str, operation: str, **request: Any) -> list[dict[str, Any]]:
    client = account.client(service, None)
    try:
        return list(client.get_paginator(operation).paginate(**request))
    except (ClientError, BotoCoreError) as error:
        no_answer = _no_answer(account, client, operation, error)
        if no_answer is None:
            raise
        raise no_answer from error


def unverified_reason(error: BaseException) -> str:
    if isinstance(error, NoAnswer):
        return str(error)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"could not check: {details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    return f"could not check: {error}"
