"""Which uploaded object keys may name an output key, and where the others' rejections go.

An output key is `results/<path>.json` or `rejected/<path>.json`, where `<path>` is the key after
`incoming/`. A path with `.`/`..` segments (also percent-encoded: `%2e%2e`), empty segments,
backslashes or control characters could escape those prefixes wherever keys are treated as paths or
URLs (a sync to disk, a proxy that normalises `/../`), and a path near S3's 1,024-byte key limit
cannot take the output prefix and suffix, so neither becomes part of an output key: its rejection
is recorded under `rejected/_unsafe/<sha256 of the key>.json` instead, with the original key inside
the record.
"""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

UNSAFE_KEYS_PREFIX = "rejected/_unsafe/"
_DOT_SEGMENTS = frozenset({".", ".."})
MAX_KEY_BYTES = 1024  # S3's limit
# The longest output key wrapping: `rejected/` (or `results/`) + path + `.json`.
_OUTPUT_KEY_OVERHEAD = len("rejected/") + len(".json")


def is_safe_relative_path(path: str) -> bool:
    """True when every `/` segment is a plain name (no dot segments, however encoded) and the output
    keys made from `path` fit S3's key limit."""
    if len(path.encode("utf-8", "surrogatepass")) + _OUTPUT_KEY_OVERHEAD > MAX_KEY_BYTES:
        return False
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in path):
        return False
    for segment in path.split("/"):
        decoded = unquote(segment)
        if not segment or decoded in _DOT_SEGMENTS or "/" in decoded or "\\" in decoded:
            return False
    return True


def unsafe_rejection_key(source_key: str) -> str:
    """A fixed-shape key for the rejection of an unsafe key (the same key always maps to the same record)."""
    digest = hashlib.sha256(source_key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{UNSAFE_KEYS_PREFIX}{digest}.json"
