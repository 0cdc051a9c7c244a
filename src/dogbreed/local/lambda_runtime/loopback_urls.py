"""A worker hook (`LOOPBACK_URLS_HOOK`) for a local cloud without internet: the functions' URL guard
also fetches http:// and https:// URLs on loopback addresses (127.0.0.1, ::1), and only those.

The product's guard (functions/shared/prediction/url_guard.py) admits public HTTPS addresses only and has
no switch for this. The hook wraps `url_guard.fetch_url` in the worker process before the handler is
imported; every other rule of the guard (byte cap, deadlines, redirects re-checked hop by hop,
ambiguous hosts refused) still applies. `dogbreed local up` installs it unless `--no-loopback-urls`.
"""

from __future__ import annotations

import functools
from typing import Any

LOOPBACK_URLS_HOOK = "dogbreed.local.lambda_runtime.loopback_urls:install"


def _loopback_only(address: Any) -> bool:
    return bool(address.is_loopback)


def install() -> None:
    try:
        from prediction import url_guard  # the function's domain layer (the shared layer)
    except ImportError:
        return  # a function without the URL guard has nothing to allow
    original = url_guard.fetch_url
    if getattr(original, "loopback_allowed", False):
        return

    @functools.wraps(original)
    def fetch_url(url: str, **options: Any) -> bytes:
        options.update(allow_http=True, address_allowed=_loopback_only)
        result: bytes = original(url, **options)
        return result

    fetch_url.loopback_allowed = True  # type: ignore[attr-defined]
    url_guard.fetch_url = fetch_url
