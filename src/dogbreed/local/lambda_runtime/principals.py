"""Per-function credentials: each function's workers call AWS with an access key id of their own, so
the local cloud can tell which function (which execution role) made a call, as CloudTrail and IAM do.

Lambda hands a function temporary credentials of its execution role (an `ASIA...` access key id with a
session token). Here the key id is derived from the role ARN (stack name + the function's logical id),
so it is stable across restarts and redeploys; moto accepts any key. The mapping back is
`Principals.lookup(access_key_id)`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dogbreed.local.iam.identity import ACCESS_KEY_PREFIX, access_key_id_for, role_credentials
from dogbreed.local.lambda_runtime.function import FunctionSpec

__all__ = ["ACCESS_KEY_PREFIX", "FunctionPrincipal", "Principals", "access_key_id_for"]


@dataclass(frozen=True)
class FunctionPrincipal:
    access_key_id: str
    function_name: str
    logical_id: str
    role_arn: str

    def environment(self) -> dict[str, str]:
        """The credential variables Lambda sets in the function's environment (dummy secrets here)."""
        return role_credentials(self.role_arn)

    @classmethod
    def of(cls, function: FunctionSpec) -> FunctionPrincipal:
        role = function.execution_role_arn
        return cls(access_key_id_for(role), function.name, function.logical_id, role)


class Principals:
    """Access key id -> the function principal using it, for every registered function."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, FunctionPrincipal] = {}

    def replace(self, principals: list[FunctionPrincipal]) -> None:
        with self._lock:
            self._by_key = {principal.access_key_id: principal for principal in principals}

    def lookup(self, access_key_id: str) -> FunctionPrincipal | None:
        with self._lock:
            return self._by_key.get(access_key_id)

    def all(self) -> list[FunctionPrincipal]:
        with self._lock:
            return sorted(self._by_key.values(), key=lambda principal: principal.function_name)
