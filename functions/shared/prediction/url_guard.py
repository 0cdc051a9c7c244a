"""Fetch an image URL without becoming an SSRF proxy (the prediction API's `{"url": ...}` input; the
Lambda side only: the endpoint takes image bytes and fetches nothing).

    data = fetch_url("https://example.com/dog.jpg", max_bytes=6 * 2**20)

Rules, in order, for the URL and for every redirect hop (followed manually, at most `max_redirects`):

- scheme `https` (or `http` only with `allow_http=True`); credentials in the URL are refused;
- the host is either a canonical IP literal or a name; numeric spellings that resolvers interpret
  in surprising ways (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`) are refused outright;
- the host is resolved once and *every* address must pass `address_allowed` (by default
  `is_public_address`: no private, loopback, link-local incl. 169.254.169.254, multicast, reserved,
  unspecified, shared/CGNAT, IPv4-mapped/6to4/Teredo IPv6 around such addresses);
- the connection goes to the checked address itself (no second resolution, so DNS rebinding cannot
  swap it), while the Host header and the TLS SNI/certificate check use the original name;
- connect and read timeouts, a total deadline, and a byte cap enforced while streaming.

Tests inject `address_allowed` (e.g. to allow 127.0.0.1 for a local server) and `resolver`; the defaults
are never weakened.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from request_guards.errors import (
    BadRequestError,
    FetchError,
    ForbiddenSourceError,
    PayloadTooLargeError,
)
from request_guards.image_guard import DEFAULT_MAX_BYTES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]
Resolver = Callable[[str, int], list[str]]

DEFAULT_CONNECT_TIMEOUT_S = 3.0
DEFAULT_READ_TIMEOUT_S = 5.0
DEFAULT_TOTAL_TIMEOUT_S = 15.0
DEFAULT_MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2048
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "dogbreed-image-fetch/1.0"
_CHUNK = 64 * 1024

# Hosts made only of digits, dots and hex prefixes: inet_aton would read them as addresses
# (127.1 -> 127.0.0.1, 2130706433 -> 127.0.0.1, 0x7f000001, 0177.0.0.1 octal).
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
# 100.64.0.0/10 (carrier-grade NAT) is not "private" in the ipaddress module but is not public either.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (the default policy)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None or address.teredo is not None:
            return False  # tunnels that embed an IPv4 address are never a legitimate image host
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def resolve_host(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to (the default resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"the host {host!r} could not be resolved", code="url_dns_error") from error
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # IDNA-encoded name or IP literal (no brackets)
    port: int
    path: str  # path + query, never empty


def _parse_target(url: str, *, allow_http: bool) -> _Target:
    if len(url) > MAX_URL_LENGTH:
        raise BadRequestError(f"the URL is longer than {MAX_URL_LENGTH} characters", code="invalid_url")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise BadRequestError("the URL contains whitespace or control characters", code="invalid_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise BadRequestError("the URL is malformed", code="invalid_url") from error
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ForbiddenSourceError("only https URLs are accepted", code="url_scheme_not_allowed")
    if scheme == "http" and not allow_http:
        raise ForbiddenSourceError(
            "only https URLs are accepted (http is disabled)", code="url_scheme_not_allowed"
        )
    if parts.username is not None or parts.password is not None:
        raise ForbiddenSourceError("URLs with credentials are not accepted", code="url_credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BadRequestError("the URL has no host", code="invalid_url")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise BadRequestError("the URL host is not a valid name", code="invalid_url") from error
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _Target(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path)


def _literal_address(host: str) -> IPAddress | None:
    """The IP a host literal denotes, None for a name; ambiguous numeric spellings are refused."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        raise ForbiddenSourceError(
            "numeric host spellings other than canonical dotted-quad IPv4 are not accepted",
            code="url_ambiguous_host",
        )
    return None


def _checked_address(target: _Target, resolver: Resolver, address_allowed: AddressPolicy) -> str:
    literal = _literal_address(target.host)
    raw = [str(literal)] if literal is not None else resolver(target.host, target.port)
    if not raw:
        raise FetchError(f"the host {target.host!r} has no addresses", code="url_dns_error")
    for text in raw:
        try:
            address = ipaddress.ip_address(text)
        except ValueError as error:
            raise FetchError("the host resolved to an invalid address", code="url_dns_error") from error
        if not address_allowed(address):
            # One forbidden answer taints the name: a mixed answer set is how rebinding attacks start.
            raise ForbiddenSourceError(
                "the URL points to a non-public network address", code="url_forbidden_address"
            )
    return raw[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a pre-checked address; `host` stays the URL's name for the Host header."""

    def __init__(self, host: str, port: int, *, address: str, connect_timeout: float) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a pre-checked address; SNI and certificate verification use the URL's name."""

    def __init__(
        self, host: str, port: int, *, address: str, connect_timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=connect_timeout, context=context)
        self._address = address
        self._tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("fetching the URL took too long", code="url_timeout")
    return left


def _request_once(
    target: _Target,
    address: str,
    *,
    max_bytes: int,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    ssl_context: ssl.SSLContext | None,
) -> tuple[int, str | None, bytes]:
    """One GET: (status, Location header, body). The body is read only for 200."""
    timeout = min(connect_timeout, _remaining(deadline))
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(
            target.host,
            target.port,
            address=address,
            connect_timeout=timeout,
            context=ssl_context or ssl.create_default_context(),
        )
    else:
        connection = _PinnedHTTPConnection(target.host, target.port, address=address, connect_timeout=timeout)
    watchdog: threading.Timer | None = None
    response: http.client.HTTPResponse | None = None
    try:
        connection.connect()
        assert connection.sock is not None
        # Each blocking read waits at most `read_timeout`; the watchdog cuts the socket at the total
        # deadline, so a server that drips its headers or body a byte at a time cannot hold us longer.
        connection.sock.settimeout(min(read_timeout, _remaining(deadline)))
        watchdog = threading.Timer(_remaining(deadline), _cut, args=(connection.sock,))
        watchdog.daemon = True
        watchdog.start()
        connection.request(
            "GET",
            target.path,
            headers={"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
        )
        response = connection.getresponse()
        if response.status != 200:
            return response.status, response.getheader("Location"), b""
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > max_bytes:
            raise PayloadTooLargeError(
                f"the image at the URL is {int(length)} bytes; the limit is {max_bytes} bytes",
                code="body_too_large",
            )
        chunks: list[bytes] = []
        received = 0
        while True:
            _remaining(deadline)
            # read1: at most one socket read (`read(n)` keeps reading until it has n bytes).
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLargeError(
                    f"the image at the URL is larger than {max_bytes} bytes", code="body_too_large"
                )
            chunks.append(chunk)
        _remaining(deadline)  # a body cut short by the watchdog reads as a clean end
        return 200, None, b"".join(chunks)
    except TimeoutError as error:
        raise FetchError("the URL did not answer in time", code="url_timeout") from error
    except ssl.SSLError as error:
        raise _past_deadline(deadline) or FetchError(
            "the TLS handshake with the URL's host failed", code="url_tls_error"
        ) from error
    except http.client.HTTPException as error:
        raise _past_deadline(deadline) or FetchError(
            "the URL's server sent an invalid HTTP response", code="url_bad_response"
        ) from error
    except OSError as error:
        raise _past_deadline(deadline) or FetchError(
            "the URL's host could not be reached", code="url_unreachable"
        ) from error
    finally:
        if watchdog is not None:
            watchdog.cancel()
        # The response owns the socket's file: closing only the connection would leave it open.
        if response is not None:
            response.close()
        connection.close()


def _cut(sock: socket.socket) -> None:
    """The watchdog: end every pending and future read on `sock` (the deadline has passed)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _past_deadline(deadline: float) -> FetchError | None:
    if time.monotonic() >= deadline:
        return FetchError("fetching the URL took too long", code="url_timeout")
    return None


def fetch_url(
    url: str,
    *,
    allow_http: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    read_timeout: float = DEFAULT_READ_TIMEOUT_S,
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT_S,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    resolver: Resolver = resolve_host,
    address_allowed: AddressPolicy = is_public_address,
    ssl_context: ssl.SSLContext | None = None,
) -> bytes:
    """GET `url` under the rules in the module docstring and return the body (at most `max_bytes`).

    Raises BadRequestError (malformed URL), ForbiddenSourceError (scheme, credentials, address),
    PayloadTooLargeError (over `max_bytes`) or FetchError (DNS, timeout, TLS, HTTP status, redirects).
    """
    if not isinstance(url, str) or not url:
        raise BadRequestError("the URL must be a non-empty string", code="invalid_url")
    deadline = time.monotonic() + total_timeout
    current = url
    for _hop in range(max_redirects + 1):
        target = _parse_target(current, allow_http=allow_http)
        address = _checked_address(target, resolver, address_allowed)
        status, location, body = _request_once(
            target,
            address,
            max_bytes=max_bytes,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline=deadline,
            ssl_context=ssl_context,
        )
        if status == 200:
            return body
        if status in REDIRECT_STATUSES:
            if not location:
                raise FetchError(
                    f"the URL redirected (HTTP {status}) without a Location", code="url_bad_response"
                )
            current = urljoin(current, location)
            continue
        raise FetchError(f"the URL answered HTTP {status}", code="url_http_error")
    raise FetchError(f"the URL redirected more than {max_redirects} times", code="url_too_many_redirects")
