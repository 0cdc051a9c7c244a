"""Lambda's concurrency model for the local cloud's functions.

A function with `ReservedConcurrentExecutions` runs at most that many invocations at once; the
others share the account's unreserved pool (the regional quota minus every reservation). A
synchronous invocation that finds no free slot is throttled at once; an asynchronous one waits in
the function's queue (see `async_invocations.AsyncQueue`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

# AWS's default concurrent-executions quota per account and region.
ACCOUNT_CONCURRENCY = 1000


class LambdaConcurrency:
    def __init__(self, account_limit: int = ACCOUNT_CONCURRENCY) -> None:
        self.account_limit = account_limit
        self._reserved: dict[str, int] = {}
        self._in_use: dict[str, int] = {}
        # Slots each function holds from the unreserved pool (a redeploy may change its reservation).
        self._unreserved_held: dict[str, int] = {}
        self._unreserved_in_use = 0
        self._changed = threading.Condition()

    def configure(self, reserved: Mapping[str, int]) -> None:
        """Function name -> ReservedConcurrentExecutions, for the functions that set it."""
        with self._changed:
            self._reserved = dict(reserved)
            self._changed.notify_all()

    def limit(self, function: str) -> int:
        """How many invocations of `function` may run at once."""
        with self._changed:
            return self._limit(function)

    def is_reserved(self, function: str) -> bool:
        with self._changed:
            return function in self._reserved

    def _limit(self, function: str) -> int:
        if function in self._reserved:
            return self._reserved[function]
        return max(0, self.account_limit - sum(self._reserved.values()))

    def try_acquire(self, function: str) -> bool:
        """Take a slot if one is free (a synchronous invoke: no slot means throttled)."""
        with self._changed:
            return self._take(function)

    def acquire(
        self, function: str, stop: threading.Event, poll_seconds: float = 0.5, deadline: float | None = None
    ) -> bool:
        """Wait for a slot (an asynchronous invoke); False when `stop` is set or the monotonic
        `deadline` passes first."""
        with self._changed:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                if self._take(function):
                    return True
                wait = poll_seconds if deadline is None else min(poll_seconds, deadline - time.monotonic())
                self._changed.wait(max(wait, 0.0))
        return False

    def release(self, function: str) -> None:
        with self._changed:
            self._in_use[function] -= 1
            if self._unreserved_held.get(function, 0) > 0:
                self._unreserved_held[function] -= 1
                self._unreserved_in_use -= 1
            self._changed.notify_all()

    def in_use(self, function: str) -> int:
        with self._changed:
            return self._in_use.get(function, 0)

    def _take(self, function: str) -> bool:
        if function in self._reserved:
            if self._in_use.get(function, 0) >= self._reserved[function]:
                return False
        elif self._unreserved_in_use >= self._limit(function):
            return False
        else:
            self._unreserved_in_use += 1
            self._unreserved_held[function] = self._unreserved_held.get(function, 0) + 1
        self._in_use[function] = self._in_use.get(function, 0) + 1
        return True
