"""Background work in the local cloud process: an ASGI app served by uvicorn on 127.0.0.1 in a daemon
thread (the HTTP API, the control API, the SageMaker runtime API), and a task repeated every few
seconds (metrics, health checks, auto scaling, log shipping)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import uvicorn

from dogbreed.loopback import free_port

HOST = "127.0.0.1"
logger = logging.getLogger(__name__)


class BackgroundServer:
    def __init__(self, app: Any, port: int = 0, *, name: str, lifespan: Literal["on", "off"] = "off") -> None:
        self.port = port or free_port()
        self.name = name
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host=HOST, port=self.port, log_level="warning", access_log=False, lifespan=lifespan
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start on {self.url}")
            time.sleep(0.02)

    def _serve(self) -> None:
        with contextlib.suppress(SystemExit):
            asyncio.run(self._server.serve())

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None


class Ticker:
    """Calls `tick` every `interval_seconds` in a daemon thread until `stop`; a failing tick is logged."""

    def __init__(self, tick: Callable[[], object], interval_seconds: float, *, name: str) -> None:
        self._tick = tick
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()

    def run_once(self) -> None:
        try:
            self._tick()
        except Exception:
            logger.exception("%s failed", self._thread.name)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)
