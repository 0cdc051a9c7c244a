"""Decode untrusted image bytes safely: size cap, pixel cap (decompression bombs), format allow-list,
truncation and corruption checks, and reduced-scale JPEG decoding when the caller needs less.

    image = load_image(data, max_bytes=6 * 2**20, max_pixels=40_000_000, min_size=256)

returns a fully loaded RGB `PIL.Image.Image` or raises a `request_guards.errors.InputError`.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

from PIL import Image, UnidentifiedImageError

from request_guards.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

MIB = 1024 * 1024
# The SageMaker real-time invocation payload limit is 6 MB; the same cap applies everywhere.
DEFAULT_MAX_BYTES = 6 * MIB
# 12 MP phone photos pass with room to spare; 40 MP decodes to 120 MB of RGB, which a worker survives.
DEFAULT_MAX_PIXELS = 40_000_000
# Formats Pillow may try; everything else (TIFF, PSD, EPS, ...) is refused before any decoder runs.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

# Decoder failures on hostile input surface as any of these; none of them may escape as a 500.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def check_body_size(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "body") -> None:
    """Refuse an empty body (400) or one larger than `max_bytes` (413)."""
    if not data:
        raise BadRequestError(f"the {what} is empty", code="empty_body")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"the {what} is {len(data)} bytes; the limit is {max_bytes} bytes", code="body_too_large"
        )


def load_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
) -> Image.Image:
    """Decode `data` into a loaded RGB image.

    `min_size`: the caller only needs the shorter side to be at least this many pixels, so a JPEG
    may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling), which is several times faster
    than a full decode followed by a large downscale.

    Raises BadRequestError (empty, truncated, corrupt), PayloadTooLargeError (bytes or pixels over the
    limit), UnsupportedMediaTypeError (not an image, or a format outside `formats`).
    """
    check_body_size(data, max_bytes=max_bytes, what="image")
    with warnings.catch_warnings():
        # Pillow's own bomb check is global; make its warning an error for this call only. The explicit
        # pixel check below is the per-call limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=list(formats))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise PayloadTooLargeError(
                "the image has too many pixels (decompression bomb guard)", code="image_too_large"
            ) from error
        except UnidentifiedImageError as error:
            raise _unidentified(data, formats) from error
        except _DECODE_ERRORS as error:
            raise BadRequestError("the image header is corrupt", code="corrupt_image") from error

        width, height = image.size
        if width <= 0 or height <= 0:
            raise BadRequestError("the image has no pixels", code="corrupt_image")
        if width * height > max_pixels:
            raise PayloadTooLargeError(
                f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels",
                code="image_too_large",
            )
        if min_size is not None and image.format == "JPEG":
            # Picks the largest DCT reduction that keeps both sides >= min_size.
            image.draft("RGB", (min_size, min_size))
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise PayloadTooLargeError(
                "the image has too many pixels (decompression bomb guard)", code="image_too_large"
            ) from error
        except _DECODE_ERRORS as error:
            if "truncated" in str(error).lower():
                raise BadRequestError("the image file is truncated", code="truncated_image") from error
            raise BadRequestError("the image data is corrupt", code="corrupt_image") from error
    return image if image.mode == "RGB" else image.convert("RGB")


# Magic numbers of image formats that are recognised (for a clear message) but never decoded.
_REFUSED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"%!PS", "EPS"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\x00\x00\x01\x00", "ICO"),
)


# Signatures of the accepted formats: data that starts like one but no decoder took is a broken image.
_ACCEPTED_SIGNATURES: tuple[bytes, ...] = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def _unidentified(data: bytes, formats: tuple[str, ...]) -> BadRequestError | UnsupportedMediaTypeError:
    """No allowed decoder recognised the data: a broken image of an accepted format (400), a
    known-but-refused format, or not an image at all (415)."""
    accepted = ", ".join(formats)
    if data.startswith(_ACCEPTED_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return BadRequestError("the image header is corrupt", code="corrupt_image")
    is_heif = data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif")
    found = (
        "HEIF/AVIF"
        if is_heif
        else next((name for magic, name in _REFUSED_SIGNATURES if data.startswith(magic)), None)
    )
    if found:
        return UnsupportedMediaTypeError(
            f"image format {found} is not accepted; send one of {accepted}", code="unsupported_image_format"
        )
    return UnsupportedMediaTypeError(
        f"the data is not a recognised image (accepted formats: {accepted})", code="not_an_image"
    )
