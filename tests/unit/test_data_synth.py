"""`dogbreed data synth`: layout, manifest, determinism, real JPEGs of varied sizes, learnability."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from dataset_check.breeds import DOGIMAGES_CLASSES
from dataset_check.layout import SPLITS
from dataset_check.manifest import Manifest
from PIL import Image

from dogbreed.cli import main
from dogbreed.data.synth import SIDE_RANGE, SynthError, class_signature, eval_count, synthesize


def _digest_tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth") / "ds", classes=6, per_class=8, size=48, seed=3)


def test_layout_follows_dogimages(dataset: Path) -> None:
    for split in SPLITS:
        class_dirs = sorted(p.name for p in (dataset / split).iterdir())
        assert class_dirs == list(DOGIMAGES_CLASSES[:6])
        expected = 8 if split == "train" else eval_count(8)
        for class_dir in class_dirs:
            files = sorted((dataset / split / class_dir).iterdir())
            assert len(files) == expected
            breed = class_dir.split(".", 1)[1]
            assert all(f.name.startswith(f"{breed}_") and f.suffix == ".jpg" for f in files)
    assert sorted(p.name for p in dataset.iterdir()) == ["manifest.json", "test", "train", "valid"]


def test_file_names_are_unique_across_splits(dataset: Path) -> None:
    names = [p.name for p in dataset.rglob("*.jpg")]
    assert len(names) == len(set(names))


def test_manifest_describes_the_dataset(dataset: Path) -> None:
    manifest = Manifest.read(dataset)
    assert manifest.dataset_id == "synth-c6-m8-px48-s3"
    assert manifest.classes == DOGIMAGES_CLASSES[:6]
    assert manifest.splits == {"train": 48, "valid": 12, "test": 12}
    assert manifest.source == "synthetic"
    assert manifest.params["seed"] == 3
    for split, count in manifest.splits.items():
        assert len(list((dataset / split).rglob("*.jpg"))) == count


def test_eval_splits_get_a_quarter_with_a_floor_of_two() -> None:
    assert eval_count(1) == 2
    assert eval_count(8) == 2
    assert eval_count(20) == 5
    assert eval_count(50) == 13


def test_files_are_real_jpegs_that_decode(dataset: Path) -> None:
    for path in dataset.rglob("*.jpg"):
        assert path.read_bytes()[:3] == b"\xff\xd8\xff"
        with Image.open(path) as image:
            assert image.format == "JPEG"
            image.load()
            assert image.mode == "RGB"


def test_sizes_and_aspect_ratios_vary_around_size(dataset: Path) -> None:
    sizes = set()
    for path in dataset.rglob("*.jpg"):
        with Image.open(path) as image:
            sizes.add(image.size)
    low, high = round(48 * SIDE_RANGE[0]), round(48 * SIDE_RANGE[1])
    assert all(low <= side <= high for size in sizes for side in size)
    assert len(sizes) > 40
    ratios = [w / h for w, h in sizes]
    assert min(ratios) < 0.85 and max(ratios) > 1.2


def test_same_arguments_give_byte_identical_output(dataset: Path, tmp_path: Path) -> None:
    again = synthesize(tmp_path / "again", classes=6, per_class=8, size=48, seed=3)
    assert _digest_tree(again) == _digest_tree(dataset)


def test_another_seed_gives_other_images(dataset: Path, tmp_path: Path) -> None:
    other = synthesize(tmp_path / "other", classes=6, per_class=8, size=48, seed=4)
    same_names = _digest_tree(other).keys() - {"manifest.json"}
    original = _digest_tree(dataset)
    assert not any(_digest_tree(other)[name] == original[name] for name in same_names)


def test_every_dogimages_class_has_its_own_signature() -> None:
    signatures = {class_signature(i) for i in range(len(DOGIMAGES_CLASSES))}
    assert len(signatures) == len(DOGIMAGES_CLASSES)
    first = [class_signature(i) for i in range(6)]
    assert len({s.hue for s in first}) == 6 and len({s.pattern for s in first}) == 6


def test_classes_are_separable_by_a_nearest_centroid_on_small_pixels(dataset: Path) -> None:
    """Cheap learnability check: 16 px thumbnails, a random-crop + flip augmented train set, and a
    nearest-centroid classifier on the held-out test split must beat chance by far."""
    rng = np.random.default_rng(0)

    def features(path: Path, augment: bool) -> np.ndarray:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
            width, height = image.size
            if augment:
                scale = np.sqrt(rng.uniform(0.5, 1.0))
                cw, ch = int(width * scale), int(height * scale)
                left, top = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
                image = image.crop((left, top, left + cw, top + ch))
                if rng.random() < 0.5:
                    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            pixels = np.asarray(image.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32) / 255
        gray = pixels.mean(axis=2)
        spectrum = np.log1p(np.abs(np.fft.fft2(gray))).ravel()  # texture, independent of position
        return np.concatenate([pixels.mean(axis=(0, 1)) * 10, spectrum])

    classes = DOGIMAGES_CLASSES[:6]
    centroids = np.stack(
        [
            np.mean([features(p, True) for p in sorted((dataset / "train" / c).iterdir())], axis=0)
            for c in classes
        ]
    )
    hits = total = 0
    for label, class_dir in enumerate(classes):
        for path in sorted((dataset / "test" / class_dir).iterdir()):
            predicted = int(np.argmin(((centroids - features(path, False)) ** 2).sum(axis=1)))
            hits += predicted == label
            total += 1
    assert hits / total >= 0.75  # chance is 1/6


def test_refuses_to_overwrite_without_flag(dataset: Path) -> None:
    with pytest.raises(SynthError, match="--overwrite"):
        synthesize(dataset, classes=2, per_class=1, size=32)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(SynthError, match="--classes"):
        synthesize(Path("unused"), classes=134)
    with pytest.raises(SynthError, match="--size"):
        synthesize(Path("unused"), size=8)


def test_cli_writes_dataset_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    synth = ["data", "synth", "--out", str(out)]
    assert main([*synth, "--classes", "2", "--per-class", "3", "--size", "32"]) == 0
    assert "train 6, valid 4, test 4" in capsys.readouterr().out
    assert main([*synth, "--classes", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*synth, "--classes", "3", "--per-class", "1", "--overwrite"]) == 0
    assert Manifest.read(out).num_classes == 3
    assert len(list((out / "train").iterdir())) == 3
