"""Suite sizes: small in `make test`, full under `make reliability` (DOGBREED_RELIABILITY=full)."""

from __future__ import annotations

import os

FULL_SCALE = os.environ.get("DOGBREED_RELIABILITY", "").strip().lower() == "full"


def scaled(small: int, full: int) -> int:
    """`small` in make test, `full` under make reliability."""
    return full if FULL_SCALE else small
