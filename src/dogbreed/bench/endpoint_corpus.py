"""The endpoint benchmark's corpus: photo-like JPEGs generated in code, from a small web image to a
12 MP phone photo."""

from __future__ import annotations

import io

import numpy as np

SEED = 0
# Photo sizes from a small web image to a 12 MP phone photo.
CORPUS_SIZES: tuple[tuple[int, int], ...] = (
    (800, 600),
    (1280, 960),
    (1600, 1200),
    (2048, 1536),
    (3000, 2000),
    (4000, 3000),
)
MAX_JPEG_BYTES = 6 * 1024 * 1024


def photo_like_jpeg(width: int, height: int, rng: np.random.Generator) -> bytes:
    """A JPEG with photo statistics: smooth low-frequency colour fields, a few soft blobs (subjects),
    edges and mild sensor noise; well under the 6 MB request limit."""
    from PIL import Image, ImageDraw, ImageFilter

    base = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(radius=max(width, height) / 400))
    noise = rng.normal(0, 6, size=(height, width, 3)).astype(np.int16)
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    photo = Image.fromarray(pixels)
    for quality in (90, 85, 75, 60):
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= MAX_JPEG_BYTES:
            return buffer.getvalue()
    raise RuntimeError(f"cannot encode a {width}x{height} corpus image under {MAX_JPEG_BYTES} bytes")


def build_corpus(count: int, seed: int = SEED) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [photo_like_jpeg(*CORPUS_SIZES[i % len(CORPUS_SIZES)], rng) for i in range(count)]
