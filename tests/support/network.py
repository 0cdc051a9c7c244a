"""A guard that fails the test on any DNS lookup or outgoing connection from this process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class NetworkAttempt(AssertionError):
    """Code under a `no_network` guard tried to resolve a name or open a connection."""


@contextmanager
def network_forbidden(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Inside: every connect (TCP or UDP, any address), `create_connection` and `getaddrinfo` raises
    NetworkAttempt; the attempts are also recorded in the yielded list, so a test can assert it stayed
    empty even where the code under test swallows the error."""
    attempts: list[str] = []

    def refuse(kind: str) -> Any:
        def refused(*args: Any, **_kwargs: Any) -> Any:
            attempts.append(f"{kind}{args[1:] if kind.startswith('socket.') else args}")
            raise NetworkAttempt(f"network access attempted: {attempts[-1]}")

        return refused

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    yield attempts
