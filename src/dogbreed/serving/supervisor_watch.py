"""A worker of a multi-worker model server stops when its supervisor is gone.

uvicorn's supervisor terminates its workers on SIGTERM/SIGINT, but a supervisor that dies without
handling a signal (SIGKILL, the OOM killer, a crash) leaves them orphaned, still serving on the port.
`dogbreed serve --workers N` names the supervisor in SUPERVISOR_PID_ENV; each worker then watches its
parent and sends itself SIGTERM, uvicorn's graceful drain, once the parent is no longer that process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

SUPERVISOR_PID_ENV = "DOGBREED_SERVE_SUPERVISOR_PID"
POLL_SECONDS = 0.5

logger = logging.getLogger("dogbreed.serving")


def supervisor_pid() -> int | None:
    """The supervisor this worker belongs to, or None (a single-process server)."""
    raw = os.environ.get(SUPERVISOR_PID_ENV, "").strip()
    return int(raw) if raw.isdigit() else None


def stop_with_supervisor(supervisor: int, *, poll_seconds: float = POLL_SECONDS) -> threading.Event:
    """Watch the parent from a daemon thread; SIGTERM this process once it is not `supervisor` any more
    (re-parented: the supervisor died). Setting the returned event ends the watch."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(poll_seconds):
            if os.getppid() != supervisor:
                logger.warning("worker %d: supervisor %d is gone; stopping", os.getpid(), supervisor)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
    return done
