"""Child processes of the local SageMaker backend: started in their own process group, tracked by
PID, and ended group-wide so nothing (DataLoader workers included) outlives the backend."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from dogbreed.loopback import pid_alive


def _process_groups() -> dict[int, list[int]]:
    """Live (non-zombie) PIDs by process group, read from /proc in one pass."""
    groups: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z":
            groups.setdefault(int(fields[2]), []).append(int(entry.name))
    return groups


def group_members(pgid: int) -> list[int]:
    """Live PIDs whose process group is `pgid`."""
    return _process_groups().get(pgid, [])


class ProcessRegistry:
    """Starts children in new sessions and remembers every PID it ever started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[Any]] = {}
        self._all_pids: list[int] = []

    def spawn(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path | None = None,
        stdout: int | IO[Any] | None = subprocess.PIPE,
        stderr: int | IO[Any] | None = subprocess.PIPE,
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        with self._lock:
            self._procs[proc.pid] = proc
            self._all_pids.append(proc.pid)
        return proc

    def terminate(self, proc: subprocess.Popen[Any], grace_seconds: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace_seconds`, reap the leader."""
        pgid = proc.pid  # start_new_session makes the child its own group leader
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None and not group_members(pgid):
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self.forget(proc)

    def reap_group(self, proc: subprocess.Popen[Any]) -> None:
        """After the leader exited by itself: end any straggler in its group (e.g. worker processes)."""
        if group_members(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.forget(proc)

    def forget(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)

    def running(self) -> list[subprocess.Popen[Any]]:
        with self._lock:
            return list(self._procs.values())

    def all_pids(self) -> list[int]:
        with self._lock:
            return list(self._all_pids)

    def alive_pids(self) -> list[int]:
        """Every started PID (or a member of its group) still alive."""
        alive: set[int] = set()
        groups = _process_groups()
        for pid in self.all_pids():
            if pid_alive(pid):
                alive.add(pid)
            alive.update(groups.get(pid, []))
        return sorted(alive)

    def shutdown(self, grace_seconds: float = 3.0) -> None:
        threads = [
            threading.Thread(target=self.terminate, args=(proc, grace_seconds), daemon=True)
            for proc in self.running()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
