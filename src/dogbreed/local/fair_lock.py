"""A reentrant lock granted in arrival order.

`threading.RLock` gives a released lock to whichever thread runs first, often the one that just
released it: under load some waiters wait many turns. The local cloud runs its in-process Lambda
invocations one at a time (the environment is process-wide), and with this lock they queue first
come, first served, so a caller's wait is bounded by the callers ahead of it.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class FairRLock:
    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._changed:
            if self._owner == me:
                self._depth += 1
                return True
            self._waiting.append(me)
            while self._owner is not None or self._waiting[0] != me:
                self._changed.wait()
            self._waiting.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._changed:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release a lock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._changed.notify_all()

    def __enter__(self) -> FairRLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
