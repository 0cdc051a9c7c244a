"""A loopback HTTP server on 127.0.0.2 for the URL fetcher's corpus cases: it serves a good image,
redirects anywhere (`/redirect?to=<url>`), and drips a body a byte at a time (`/drip`).

The fetcher is given the policy "public, or exactly 127.0.0.2", so this server is a permitted first
hop while 127.0.0.1, localhost and every private range stay forbidden.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, quote, urlsplit

from prediction import url_guard

from tests.reliability.hostile_corpus import good_image

HOST = "127.0.0.2"
PERMITTED = ipaddress.ip_address(HOST)
DRIP_INTERVAL_S = 0.05
DRIP_LENGTH = 100_000


def public_or_test_server(address: url_guard.IPAddress) -> bool:
    """The address policy of the fetcher's corpus runs: the default policy plus exactly this server."""
    return address == PERMITTED or url_guard.is_public_address(address)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/image.jpg":
            self._send(good_image())
        elif parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/drip":
            self._drip()
        else:
            self.send_error(404)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(DRIP_LENGTH))
        self.end_headers()
        try:
            for _ in range(DRIP_LENGTH):
                self.wfile.write(b"\xff")
                self.wfile.flush()
                time.sleep(DRIP_INTERVAL_S)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher gave up: what the case expects


@contextmanager
def redirect_server() -> Iterator[str]:
    """The server's base URL while it runs."""
    httpd = http.server.ThreadingHTTPServer((HOST, 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def redirect_url(base: str, location: str) -> str:
    """The first hop that redirects to `location` (`{port}` is filled with the server's port)."""
    port = base.rsplit(":", 1)[1]
    target = location.format(port=port)
    if target.startswith("/"):
        return f"{base}{target}"
    return f"{base}/redirect?to={quote(target, safe='')}"
