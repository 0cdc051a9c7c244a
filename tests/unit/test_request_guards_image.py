"""Image decoding guard: formats, limits, truncation, corruption, bombs and reduced-scale decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dogbreed_job import transforms
from PIL import Image
from request_guards.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from request_guards.image_guard import check_body_size, load_image

from tests.support.images import png_header_only


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "RGB"),
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "L"),
        ("PNG", "P"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
    ],
)
def test_accepted_formats_decode_to_rgb(fmt: str, mode: str) -> None:
    data = encode(photo(40, 30).convert(mode), fmt)
    image = load_image(data)
    assert image.mode == "RGB"
    assert image.size == (40, 30)


def test_empty_body_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError) as caught:
        load_image(b"")
    assert (caught.value.status, caught.value.code) == (400, "empty_body")


def test_body_over_the_byte_limit_is_413() -> None:
    data = encode(photo(64, 64), "PNG")
    with pytest.raises(PayloadTooLargeError) as caught:
        load_image(data, max_bytes=len(data) - 1)
    assert (caught.value.status, caught.value.code) == (413, "body_too_large")
    with pytest.raises(PayloadTooLargeError):
        check_body_size(b"x" * 11, max_bytes=10)


def test_image_over_the_pixel_limit_is_413() -> None:
    data = encode(photo(100, 100), "JPEG")
    with pytest.raises(PayloadTooLargeError) as caught:
        load_image(data, max_pixels=99 * 100)
    assert caught.value.code == "image_too_large"


def test_decompression_bomb_header_is_refused_before_decoding() -> None:
    # 30000 x 30000 = 900 MP: beyond Pillow's own bomb limit and ours, in a few hundred bytes.
    with pytest.raises(PayloadTooLargeError) as caught:
        load_image(png_header_only(30000, 30000))
    assert caught.value.code == "image_too_large"


def test_bomb_below_pillows_global_limit_is_caught_by_the_per_call_limit() -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        load_image(png_header_only(8000, 6000), max_pixels=40_000_000)
    assert caught.value.code == "image_too_large"


def test_truncated_jpeg_is_a_bad_request() -> None:
    data = encode(photo(200, 200), "JPEG")
    with pytest.raises(BadRequestError) as caught:
        load_image(data[: len(data) // 2])
    assert caught.value.code == "truncated_image"


def test_corrupt_png_is_a_bad_request() -> None:
    data = bytearray(encode(photo(64, 64), "PNG"))
    data[60:90] = b"\x00" * 30  # inside IDAT: CRC and zlib stream break
    with pytest.raises(BadRequestError) as caught:
        load_image(bytes(data))
    assert caught.value.code in ("corrupt_image", "truncated_image")


@pytest.mark.parametrize(
    "data",
    [
        b"hello, not an image",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"GET / HTTP/1.1\r\n\r\n",
        b"\xff\xd8",  # a JPEG start marker and nothing else
    ],
)
def test_non_images_are_415(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        load_image(data)
    assert (caught.value.status, caught.value.code) == (415, "not_an_image")


def test_known_but_refused_format_is_named() -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        load_image(encode(photo(32, 32), "TIFF"))
    assert caught.value.code == "unsupported_image_format"
    assert "TIFF" in caught.value.message


def test_large_jpeg_is_decoded_at_reduced_scale_but_never_below_min_size() -> None:
    data = encode(photo(4000, 3000), "JPEG", quality=85)
    image = load_image(data, min_size=256)
    assert image.size == (500, 375)  # 1/8 DCT scale: the smallest that keeps both sides >= 256
    assert min(image.size) >= 256
    assert load_image(data).size == (4000, 3000)


def test_reduced_scale_decode_preprocesses_like_a_full_decode() -> None:
    data = encode(photo(3000, 2000, seed=3), "JPEG", quality=90)
    size = 224
    reduced = transforms.preprocess(load_image(data, min_size=transforms.resize_size(size)), size)
    full = transforms.preprocess(Image.open(io.BytesIO(data)).convert("RGB"), size)
    assert reduced.shape == full.shape == (3, size, size)
    # Normalized units (pixel std ~ 1/0.225): a mean difference of 0.05 is ~3 grey levels of 255.
    assert float(np.abs(reduced - full).mean()) < 0.05
