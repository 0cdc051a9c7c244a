"""Processes and listening ports as Linux's /proc shows them: what the tests started and left behind.

The session-end check (tests/support/fixtures.py) makes the pytest process a child subreaper, so a
process orphaned by a test (a model server worker whose parent was killed) is re-parented to pytest
instead of init and is still found among its descendants.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp{,6}
# Python's own helper processes, which live as long as the interpreter that started them.
INTERPRETER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(child) for child in _read(f"{task}/children").split()]
    return found


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = children(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending += children(child)
    return sorted(found)


def state(pid: int) -> str:
    """The process state letter (`R`, `S`, `Z` for a zombie, ...); "" once it is gone."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else ""


def command_line(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()


def listening_ports(pid: int) -> set[int]:
    """TCP ports `pid` listens on."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        for line in _read(f"/proc/{pid}/net/{table}").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass(frozen=True)
class Leftover:
    pid: int
    command: str
    ports: frozenset[int]

    def __str__(self) -> str:
        listening = f", listening on {sorted(self.ports)}" if self.ports else ""
        return f"pid {self.pid}{listening}: {self.command[:200]}"


def live_descendants(pid: int) -> list[Leftover]:
    """Descendants of `pid` that are still running (zombies and interpreter helpers excluded)."""
    return [
        Leftover(child, command, frozenset(listening_ports(child)))
        for child in descendants(pid)
        if state(child) not in ("", "Z")
        and not any(helper in (command := command_line(child)) for helper in INTERPRETER_HELPERS)
    ]


def kill_and_reap(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    reap_zombie_children()


def reap_zombie_children() -> None:
    """Collect this process's exited children (orphans the subreaper inherited)."""
    for child in children(os.getpid()):
        if state(child) == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, os.WNOHANG)
