"""Broken candidates for endpoint updates (the local cloud's `endpoint_update` faults): model servers
that keep the SageMaker container contract's `/ping` healthy, so the update's new fleet starts and
takes traffic, and then misbehave on `/invocations`:

- `server-error`: every invocation answers 500 with the fault's message (a model that raises);
- `slow`: every invocation is forwarded to the real model server after `delay` seconds (a model that
  answers, too late).

    python -m dogbreed.local.sagemaker.faulty_model server-error --port P --message M
    python -m dogbreed.local.sagemaker.faulty_model slow --port P --delay 1.5 --upstream-port Q -- CMD...

In `slow` mode the real server (CMD, listening on Q) is this process's child, in its process group, so
the fleet's group-wide stop ends both.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dogbreed.local.sagemaker.fleet import ServeCommand, crashing_serve_command
from dogbreed.loopback import free_port

MODES = ("exit", "server-error", "slow")  # the same as the cloud's ENDPOINT_UPDATE_MODES
_UPSTREAM_START_SECONDS = 120.0


def faulty_serve_command(mode: str, message: str, delay: float, real: ServeCommand) -> ServeCommand:
    """The serve command of a broken candidate fleet (`mode` one of MODES)."""
    if mode == "exit":
        return crashing_serve_command(message)
    if mode not in MODES:
        raise ValueError(f"unknown broken-model mode {mode!r}")

    def command(model_dir: Path, port: int) -> list[str]:
        head = [sys.executable, "-m", __name__, mode, "--port", str(port), "--message", message]
        if mode == "server-error":
            return head
        upstream = free_port()
        return [
            *head,
            "--delay",
            str(delay),
            "--upstream-port",
            str(upstream),
            "--",
            *real(model_dir, upstream),
        ]

    return command


class _Handler(BaseHTTPRequestHandler):
    server: _FaultyServer

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"faulty-model: {format % args}\n")

    def do_GET(self) -> None:
        if self.path != "/ping":
            self._answer(404, b'{"error": "not found"}', "application/json")
            return
        if self.server.upstream is None:
            self._answer(200, b'{"status": "ok"}', "application/json")
            return
        self._forward("GET", None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            self._answer(404, b'{"error": "not found"}', "application/json")
            return
        if self.server.upstream is None:
            error = json.dumps({"error": {"code": "model_error", "message": self.server.message}})
            self._answer(500, error.encode(), "application/json")
            return
        time.sleep(self.server.delay)
        self._forward("POST", body)

    def _forward(self, method: str, body: bytes | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
        request = urllib.request.Request(  # noqa: S310 - loopback URL built here
            f"{self.server.upstream}{self.path}", data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  # nosec B310
                self._answer(response.status, response.read(), response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as error:
            self._answer(error.code, error.read(), error.headers.get("Content-Type", ""))
        except OSError as error:
            self._answer(502, json.dumps({"error": str(error)}).encode(), "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _FaultyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, message: str, delay: float, upstream: str | None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.message = message
        self.delay = delay
        self.upstream = upstream


def _wait_for_upstream(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _UPSTREAM_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the model server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:  # noqa: S310  # nosec B310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the model server did not answer /ping")


def _exit(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faulty_model")
    parser.add_argument("mode", choices=MODES[1:])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--message", default="injected model failure")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--upstream-port", type=int, default=0)
    arguments = list(sys.argv[1:] if argv is None else argv)
    split = arguments.index("--") if "--" in arguments else len(arguments)
    args = parser.parse_args(arguments[:split])
    command = arguments[split + 1 :]
    upstream_proc = None
    upstream = None
    if args.mode == "slow":
        upstream_proc = subprocess.Popen(command)
        upstream = f"http://127.0.0.1:{args.upstream_port}"
        _wait_for_upstream(upstream, upstream_proc)
    server = _FaultyServer(args.port, args.message, args.delay, upstream)
    signal.signal(signal.SIGTERM, _exit)  # run the `finally` below: the model server goes too
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if upstream_proc is not None:
            upstream_proc.terminate()
            upstream_proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
