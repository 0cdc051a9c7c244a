"""A learnable synthetic dataset in the dogImages layout (`train|valid|test/NNN.Breed_Name/*.jpg`).

Every class has a visual signature built to survive the training augmentation (random resized crop
at scale 0.5-1, horizontal flip, brightness/contrast/saturation jitter of 0.2) and downscaling to
32-64 px: a base hue (jitter does not change hue) combined with a texture (horizontal, vertical or
diagonal stripes, checkerboard, dots or rings) at a low or high spatial frequency. The textured
"body" sits at a random place over a random low-saturation background with pixel noise, so no single
pixel gives the class away. Diagonal stripes lean either way at random, so a flip cannot turn one
class into another.

Output is a pure function of the arguments: every image has its own random stream seeded from
(seed, class, split, image), and the JPEG encoder writes no timestamps, so the same arguments give
byte-identical files.
"""

from __future__ import annotations

import colorsys
import io
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dataset_check.breeds import DOGIMAGES_CLASSES, breed_name
from dataset_check.layout import MANIFEST_NAME, SPLITS
from dataset_check.manifest import Manifest
from PIL import Image

from dogbreed import __version__

PATTERNS: tuple[str, ...] = ("hstripes", "vstripes", "diagonal", "checker", "dots", "rings")
NUM_HUES = 12
# Pattern cycles across the shorter image side: far enough apart that a 0.5-scale crop (about
# 1.4x zoom) of the high one never looks like the low one.
CYCLES: tuple[float, ...] = (2.5, 6.5)
# Width and height are each drawn from [SIDE_RANGE[0], SIDE_RANGE[1]] x --size.
SIDE_RANGE = (0.75, 1.6)
MAX_CLASSES = len(DOGIMAGES_CLASSES)

Array = np.ndarray[Any, np.dtype[np.floating[Any]]]


class SynthError(ValueError):
    """Bad synth arguments or an output folder that would be overwritten."""


@dataclass(frozen=True)
class ClassSignature:
    hue: float  # 0..1
    pattern: str
    cycles: float


def class_signature(index: int) -> ClassSignature:
    """The signature of class `index` (0-based). Injective over all 133 classes, and the first six
    classes differ in both hue and texture."""
    if not 0 <= index < NUM_HUES * NUM_HUES:
        raise SynthError(f"class index {index} out of range")
    hue_index = index % NUM_HUES
    block = index // NUM_HUES  # 0..11
    pattern = PATTERNS[(hue_index + block) % len(PATTERNS)]
    cycles = CYCLES[(block // len(PATTERNS)) % len(CYCLES)]
    return ClassSignature(hue=hue_index / NUM_HUES, pattern=pattern, cycles=cycles)


def eval_count(per_class: int) -> int:
    """Images per class in valid and in test: about a quarter of train, at least 2."""
    return max(2, (per_class + 2) // 4)


def default_dataset_id(classes: int, per_class: int, size: int, seed: int) -> str:
    return f"synth-c{classes}-m{per_class}-px{size}-s{seed}"


def _rgb(hue: float, saturation: float, value: float) -> Array:
    return np.asarray(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), dtype=np.float32) * np.float32(255.0)


def _stripes(t: Array, phase: float) -> Array:
    # A soft square wave: sharp enough to read as stripes, smooth enough to downscale cleanly.
    return np.clip(0.5 + 1.5 * np.sin(2.0 * math.pi * t + phase), 0.0, 1.0)


def _texture(signature: ClassSignature, u: Array, v: Array, rng: np.random.Generator) -> Array:
    """Texture mask in [0, 1]; u, v are pixel coordinates divided by the shorter side."""
    cycles = signature.cycles * rng.uniform(0.9, 1.1)
    angle = math.radians(rng.uniform(-8.0, 8.0))
    ur = u * math.cos(angle) - v * math.sin(angle)
    vr = u * math.sin(angle) + v * math.cos(angle)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    if signature.pattern == "hstripes":
        return _stripes(vr * cycles, phase)
    if signature.pattern == "vstripes":
        return _stripes(ur * cycles, phase)
    if signature.pattern == "diagonal":
        lean = 1.0 if rng.random() < 0.5 else -1.0
        return _stripes((ur + lean * vr) * cycles / math.sqrt(2.0), phase)
    if signature.pattern == "checker":
        product = np.sin(2.0 * math.pi * ur * cycles + phase) * np.sin(2.0 * math.pi * vr * cycles)
        return np.clip(0.5 + 3.0 * product, 0.0, 1.0)
    if signature.pattern == "dots":
        du = (ur * cycles + phase / (2.0 * math.pi)) % 1.0 - 0.5
        dv = (vr * cycles + rng.random()) % 1.0 - 0.5
        distance = np.sqrt(du * du + dv * dv)
        return np.clip((0.3 - distance) * 12.0 + 0.5, 0.0, 1.0)
    # rings around a point near the middle
    cu, cv = u.max() * rng.uniform(0.35, 0.65), v.max() * rng.uniform(0.35, 0.65)
    radius = np.sqrt((u - cu) ** 2 + (v - cv) ** 2)
    return _stripes(radius * cycles, phase)


def render_image(class_index: int, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image of class `class_index`, about `size` px per side."""
    signature = class_signature(class_index)
    width = round(size * rng.uniform(*SIDE_RANGE))
    height = round(size * rng.uniform(*SIDE_RANGE))
    shorter = float(min(width, height))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xs / shorter, ys / shorter

    # Background: any hue, low saturation, a gentle gradient.
    bg_top = _rgb(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.25, 0.9))
    bg_bottom = _rgb(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.25, 0.9))
    ramp = (ys / max(height - 1, 1))[..., None]
    background = bg_top * (1.0 - ramp) + bg_bottom * ramp

    # Body: an ellipse covering much of the frame, two tones of the class hue.
    hue = signature.hue + rng.uniform(-0.02, 0.02)
    light = _rgb(hue, rng.uniform(0.55, 0.8), rng.uniform(0.85, 1.0))
    dark = _rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.3, 0.5))
    mask = _texture(signature, u, v, rng)[..., None]
    body = dark + (light - dark) * mask
    cx, cy = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6)
    rx, ry = width * rng.uniform(0.36, 0.5), height * rng.uniform(0.36, 0.5)
    ellipse = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
    inside = np.clip((1.0 - ellipse) * 6.0, 0.0, 1.0)[..., None]

    pixels = background * (1.0 - inside) + body * inside
    pixels += rng.standard_normal(size=pixels.shape, dtype=np.float32) * np.float32(8.0)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def split_counts(per_class: int) -> dict[str, int]:
    """Images per class in each split."""
    return {"train": per_class, "valid": eval_count(per_class), "test": eval_count(per_class)}


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    existing = [name for name in (*SPLITS, MANIFEST_NAME) if (out_dir / name).exists()]
    if existing and not overwrite:
        raise SynthError(
            f"{out_dir} already holds a dataset ({', '.join(existing)}); pass --overwrite to replace it"
        )
    for name in existing:
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def synthesize(
    out_dir: Path | str,
    *,
    classes: int = 10,
    per_class: int = 20,
    size: int = 64,
    seed: int = 0,
    dataset_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the dataset under `out_dir` (train/, valid/, test/, manifest.json) and return its root."""
    if not 1 <= classes <= MAX_CLASSES:
        raise SynthError(f"--classes must be between 1 and {MAX_CLASSES}, got {classes}")
    if per_class < 1:
        raise SynthError(f"--per-class must be at least 1, got {per_class}")
    if not 16 <= size <= 1024:
        raise SynthError(f"--size must be between 16 and 1024 px, got {size}")
    if seed < 0:
        raise SynthError(f"--seed must be non-negative, got {seed}")
    root = Path(out_dir)
    manifest = Manifest(
        dataset_id=dataset_id or default_dataset_id(classes, per_class, size, seed),
        classes=DOGIMAGES_CLASSES[:classes],
        splits={split: count * classes for split, count in split_counts(per_class).items()},
        created_by=f"dogbreed {__version__} data synth",
        source="synthetic",
        params={"classes": classes, "per_class": per_class, "size": size, "seed": seed},
    )
    _prepare_output(root, overwrite)

    per_split = split_counts(per_class)
    for class_index, class_dir in enumerate(manifest.classes):
        stem = breed_name(class_dir)
        number = 0  # file numbers run on across splits, as in dogImages
        for split_index, split in enumerate(SPLITS):
            folder = root / split / class_dir
            folder.mkdir(parents=True, exist_ok=True)
            for image_index in range(per_split[split]):
                number += 1
                rng = np.random.default_rng([seed, class_index, split_index, image_index])
                image = render_image(class_index, size, rng)
                quality = int(rng.integers(80, 96))
                (folder / f"{stem}_{number:05d}.jpg").write_bytes(encode_jpeg(image, quality))
    # The manifest goes last: its presence marks a complete dataset.
    manifest.write(root)
    return root
