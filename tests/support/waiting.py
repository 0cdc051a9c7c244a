"""Polling for an outcome that arrives asynchronously (a process, a server, an S3 object)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | Literal[False] | None], *, timeout: float, what: str, interval: float = 0.2
) -> T:
    """The first truthy value `check` returns within `timeout` seconds; AssertionError naming `what`
    otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
