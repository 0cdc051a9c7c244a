"""An interpreter with no way out: put this folder on PYTHONPATH and every Python process started with
it (a server and its worker processes) refuses outbound network access, as a SageMaker container
with network isolation does.

- `socket.connect`/`connect_ex` to anything but a loopback address or a Unix socket fail with
  ENETUNREACH; name lookups other than IP literals and `localhost` fail like an unreachable resolver.
- Every refusal is appended to the file named by DOGBREED_OFFLINE_LOG, so a test can show what the
  process tried (and that the guard works).
- DOGBREED_OFFLINE_HIDDEN_MODULES (comma separated, e.g. `onnxruntime`) cannot be imported: the
  container's image does not have them.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

LOG_ENV = "DOGBREED_OFFLINE_LOG"
HIDDEN_ENV = "DOGBREED_OFFLINE_HIDDEN_MODULES"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _record(what: str) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {what}\n")


def _is_local_host(host: Any) -> bool:
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _allowed(family: int, address: Any) -> bool:
    if family == getattr(socket, "AF_UNIX", None):
        return True
    return isinstance(address, tuple) and bool(address) and _is_local_host(address[0])


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(self.family, address):
        _record(f"connect {address!r}")
        raise OSError(errno.ENETUNREACH, f"network isolation: no route to {address!r}")
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed(self.family, address):
        _record(f"connect_ex {address!r}")
        return errno.ENETUNREACH
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_local_host(host):
        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            _record(f"getaddrinfo {host!r}")
            raise socket.gaierror(socket.EAI_AGAIN, f"network isolation: cannot resolve {host!r}") from None
    return _getaddrinfo(host, *args, **kwargs)


class _WithoutHiddenModules:
    """Wraps a sys.meta_path finder so the hidden modules are found nowhere (find_spec -> None), as
    when they are not installed; everything else is the wrapped finder's answer."""

    def __init__(self, finder: Any, names: frozenset[str]) -> None:
        self._finder = finder
        self._names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> Any:
        if fullname.split(".", 1)[0] in self._names:
            return None
        find_spec = getattr(self._finder, "find_spec", None)
        return None if find_spec is None else find_spec(fullname, path, target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._finder, name)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
socket.getaddrinfo = _guarded_getaddrinfo
_hidden = frozenset(name.strip() for name in os.environ.get(HIDDEN_ENV, "").split(",") if name.strip())
if _hidden:
    sys.meta_path[:] = [_WithoutHiddenModules(finder, _hidden) for finder in sys.meta_path]
