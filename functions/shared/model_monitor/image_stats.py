"""The image statistics the baseline records and the monitor compares: width, height, aspect
(width / height) and brightness (mean of the greyscale image, 0..255). One definition, used by the
training job on the training split and by the monitor on captured request bodies."""

from __future__ import annotations

import io
from typing import Final

from PIL import Image, ImageStat

FEATURES: Final[tuple[str, ...]] = ("width", "height", "aspect", "brightness")
# Brightness is measured on a thumbnail: the mean barely moves and large images stay cheap.
_THUMBNAIL: Final = (64, 64)


class ImageStatsError(ValueError):
    """The bytes are not an image Pillow can read."""


def image_stats(data: bytes) -> dict[str, float]:
    """The statistics of one encoded image (JPEG, PNG, ...)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.draft("L", _THUMBNAIL)  # JPEG decodes at a reduced scale
            grey = image.convert("L")
            grey.thumbnail(_THUMBNAIL)
            brightness = float(ImageStat.Stat(grey).mean[0])
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ImageStatsError(f"not a readable image: {error}") from error
    if width <= 0 or height <= 0:
        raise ImageStatsError("image has no pixels")
    return {
        "width": float(width),
        "height": float(height),
        "aspect": width / height,
        "brightness": brightness,
    }
