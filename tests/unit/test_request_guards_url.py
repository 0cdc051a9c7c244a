"""SSRF guard: a real HTTP server on 127.0.0.1 serves images and redirects to forbidden addresses.

The default policy refuses loopback, so tests that need the "allowed" path inject a policy that
allows exactly 127.0.0.1 on top of the default; the default itself is never weakened.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
import time
from collections.abc import Iterator

import pytest
from prediction import url_guard
from prediction.url_guard import fetch_url, is_public_address
from request_guards.errors import BadRequestError, FetchError, ForbiddenSourceError, PayloadTooLargeError

LOOPBACK = ipaddress.ip_address("127.0.0.1")
IMAGE = b"\xff\xd8\xff\xe0" + b"x" * 1000


def allow_loopback(address: url_guard.IPAddress) -> bool:
    return address == LOOPBACK or is_public_address(address)


class _Handler(http.server.BaseHTTPRequestHandler):
    seen_hosts: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        _Handler.seen_hosts.append(self.headers.get("Host", ""))
        port = int(self.server.server_address[1])  # type: ignore[index]
        routes = {
            "/image.jpg": lambda: self._body(IMAGE),
            "/to-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-decimal-loopback": lambda: self._redirect(f"http://2130706433:{port}/image.jpg"),
            "/to-octal-loopback": lambda: self._redirect(f"http://0177.0.0.1:{port}/image.jpg"),
            "/to-mapped-ipv6": lambda: self._redirect(f"http://[::ffff:10.0.0.1]:{port}/image.jpg"),
            "/to-file": lambda: self._redirect("file:///etc/passwd"),
            "/to-image": lambda: self._redirect("/image.jpg", 301),
            "/loop": lambda: self._redirect("/loop"),
            "/no-location": lambda: self._redirect(""),
            "/big-declared": self._big_declared,
            "/big-streamed": self._big_streamed,
            "/slow": self._slow,
            "/drip-headers": self._drip_headers,
            "/missing": lambda: self.send_error(404),
        }
        routes.get(self.path, lambda: self.send_error(404))()

    def _body(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _big_declared(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(50 * 1024 * 1024))
        self.end_headers()

    def _big_streamed(self) -> None:
        # No Content-Length: the cap must hold while streaming.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(64):
                self.wfile.write(b"y" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _drip_headers(self) -> None:
        # One header byte every 50 ms: each read succeeds long before the read timeout.
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            for _ in range(400):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _slow(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "10")
        self.end_headers()
        self.wfile.flush()
        time.sleep(1.5)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fetch_local(url: str, **kwargs: object) -> bytes:
    options: dict[str, object] = {"allow_http": True, "address_allowed": allow_loopback, "total_timeout": 5.0}
    options.update(kwargs)
    return fetch_url(url, **options)  # type: ignore[arg-type]


def test_allowed_source_returns_the_body(server: str) -> None:
    assert fetch_local(f"{server}/image.jpg") == IMAGE


def test_default_policy_refuses_loopback_even_with_http_allowed(server: str) -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        fetch_url(f"{server}/image.jpg", allow_http=True)
    assert caught.value.code == "url_forbidden_address"
    assert caught.value.status == 422


def test_http_is_refused_by_default(server: str) -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        fetch_url(f"{server}/image.jpg", address_allowed=allow_loopback)
    assert caught.value.code == "url_scheme_not_allowed"


def test_relative_redirect_to_an_allowed_target_is_followed(server: str) -> None:
    assert fetch_local(f"{server}/to-image") == IMAGE


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/to-metadata", "url_forbidden_address"),
        ("/to-decimal-loopback", "url_ambiguous_host"),
        ("/to-octal-loopback", "url_ambiguous_host"),
        ("/to-mapped-ipv6", "url_forbidden_address"),
        ("/to-file", "url_scheme_not_allowed"),
    ],
)
def test_every_redirect_hop_is_checked(server: str, path: str, code: str) -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        fetch_local(f"{server}{path}")
    assert caught.value.code == code


def test_redirect_loops_stop_after_max_redirects(server: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_local(f"{server}/loop", max_redirects=3)
    assert caught.value.code == "url_too_many_redirects"


def test_redirect_without_location_is_a_fetch_error(server: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_local(f"{server}/no-location")
    assert caught.value.code == "url_bad_response"


def test_http_error_status_is_reported(server: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_local(f"{server}/missing")
    assert caught.value.code == "url_http_error"


@pytest.mark.parametrize("path", ["/big-declared", "/big-streamed"])
def test_byte_cap_applies_to_declared_and_streamed_bodies(server: str, path: str) -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        fetch_local(f"{server}{path}", max_bytes=1024 * 1024)
    assert caught.value.status == 413


def test_read_timeout(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch_local(f"{server}/slow", read_timeout=0.3)
    assert caught.value.code == "url_timeout"
    assert time.monotonic() - started < 1.4


def test_total_deadline(server: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_local(f"{server}/slow", read_timeout=5.0, total_timeout=0.4)
    assert caught.value.code == "url_timeout"


def test_headers_dripped_a_byte_at_a_time_end_at_the_total_deadline(server: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_local(f"{server}/drip-headers", read_timeout=5.0, total_timeout=0.5)
    assert caught.value.code == "url_timeout"


def test_connects_to_the_checked_address_and_keeps_the_host_header(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    calls: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    _Handler.seen_hosts.clear()
    assert fetch_local(f"http://images.example:{port}/image.jpg", resolver=resolver) == IMAGE
    assert calls == ["images.example"]  # resolved once; the connection used that answer
    assert _Handler.seen_hosts == [f"images.example:{port}"]


@pytest.mark.parametrize(
    "answers",
    [["10.0.0.5"], ["93.184.216.34", "127.0.0.1"], ["169.254.169.254"], ["::ffff:192.168.1.1"]],
)
def test_names_resolving_to_forbidden_addresses_are_refused(answers: list[str]) -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        fetch_url("https://images.example/dog.jpg", resolver=lambda _h, _p: answers)
    assert caught.value.code == "url_forbidden_address"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "[::1]",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[fe80::1]",
        "[fc00::1]",
        "[ff02::1]",
        "[2002:7f00:1::1]",
    ],
)
def test_forbidden_ip_literals_are_refused_without_connecting(host: str, no_network: list[str]) -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        fetch_url(f"https://{host}/dog.jpg")
    assert caught.value.code == "url_forbidden_address"
    assert no_network == []


@pytest.mark.parametrize(
    "host", ["127.1", "0x7f000001", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "017700000001"]
)
def test_ambiguous_numeric_spellings_are_refused(host: str) -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        fetch_url(f"https://{host}/dog.jpg")
    assert caught.value.code == "url_ambiguous_host"


@pytest.mark.parametrize(
    ("url", "error", "code"),
    [
        ("https://user:pw@images.example/dog.jpg", ForbiddenSourceError, "url_credentials"),
        ("https://user@images.example/dog.jpg", ForbiddenSourceError, "url_credentials"),
        ("ftp://images.example/dog.jpg", ForbiddenSourceError, "url_scheme_not_allowed"),
        ("gopher://images.example/", ForbiddenSourceError, "url_scheme_not_allowed"),
        ("https:///dog.jpg", BadRequestError, "invalid_url"),
        ("https://images.example:99999/dog.jpg", BadRequestError, "invalid_url"),
        ("https://images.example/a b.jpg", BadRequestError, "invalid_url"),
        ("https://images.example/" + "a" * 3000, BadRequestError, "invalid_url"),
        ("", BadRequestError, "invalid_url"),
    ],
)
def test_malformed_or_forbidden_urls(url: str, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as caught:
        fetch_url(url, resolver=lambda _h, _p: ["93.184.216.34"])
    assert caught.value.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("::ffff:127.0.0.1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ],
)
def test_default_address_policy(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public
