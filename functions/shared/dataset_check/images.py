"""Per-file image checks: empty, not an image, corrupt, truncated, too large.

`Image.verify()` checks the container structure, then a real decode catches truncated or broken
pixel data. JPEGs decode through `Image.draft` at 1/8 scale: the whole entropy-coded stream is
still read (so truncation shows), at a fraction of the cost of a full-size decode.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

ACCEPTED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG"})
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
SUFFIX_FORMAT: dict[str, str] = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


class _TruncationSetting:
    """Reference-counted override of Pillow's process-wide LOAD_TRUNCATED_IMAGES flag."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved = False


_truncation = _TruncationSetting()


@dataclass(frozen=True)
class ImageProblem:
    kind: str  # "empty" | "not_image" | "unsupported_format" | "corrupt" | "truncated" | "too_large"
    detail: str


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


@contextmanager
def strict_truncation() -> Iterator[None]:
    """Make Pillow raise on truncated files even if the process allowed them
    (`ImageFile.LOAD_TRUNCATED_IMAGES = True`, common in training code); restored afterwards."""
    with _truncation.lock:
        if _truncation.depth == 0:
            _truncation.saved = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _truncation.depth += 1
    try:
        yield
    finally:
        with _truncation.lock:
            _truncation.depth -= 1
            if _truncation.depth == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _truncation.saved


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def inspect_image(data: bytes) -> ImageInfo | ImageProblem:
    """Decode `data` far enough to know it is a whole, supported image. Call inside
    `strict_truncation()` for truncation to be reported whatever the process setting."""
    if not data:
        return ImageProblem("empty", "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                image_format = probe.format or "unknown"
                width, height = probe.size
                probe.verify()
            if image_format not in ACCEPTED_FORMATS:
                return ImageProblem("unsupported_format", f"{image_format} image; accepted: JPEG, PNG")
            with Image.open(io.BytesIO(data)) as image:
                if image.format == "JPEG":
                    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
    except UnidentifiedImageError:
        if data.startswith(_SIGNATURES):
            return ImageProblem("corrupt", "image signature with an unreadable header")
        if _looks_like_text(data):
            return ImageProblem("not_image", "text, not an image")
        return ImageProblem("not_image", "not a recognisable image")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return ImageProblem("too_large", str(exc).split(".")[0])
    except OSError as exc:
        message = str(exc)
        if "truncated" in message.lower():
            return ImageProblem("truncated", f"truncated: {message}")
        return ImageProblem("corrupt", f"cannot decode: {message}")
    except (SyntaxError, ValueError, IndexError, TypeError, EOFError) as exc:
        # Pillow plugins raise these for malformed headers and chunks.
        return ImageProblem("corrupt", f"cannot decode: {exc}")
    return ImageInfo(image_format, width, height)
