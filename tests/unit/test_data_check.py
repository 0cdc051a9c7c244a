"""`dogbreed data check` and the shared `dataset_check` package: a clean dataset passes; seeded
problems (corrupt, truncated, empty, text named .jpg, class missing from a split, stray files)
are each reported and make the check fail; the S3 listing gives the same report as the folder."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import boto3
import pytest
from dataset_check.checker import check_entries
from dataset_check.entries import DatasetEntry, iter_directory, iter_s3_prefix
from dataset_check.images import inspect_image, strict_truncation
from dataset_check.manifest import Manifest, ManifestError
from dataset_check.report import Issue
from moto import mock_aws
from PIL import Image, ImageFile

from dogbreed.cli import main
from dogbreed.data.check import DatasetPathError, check_directory
from dogbreed.data.synth import synthesize

CLASSES = ["001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("check") / "clean", classes=3, per_class=4, size=32, seed=1)


@pytest.fixture
def broken(clean: Path, tmp_path: Path) -> Path:
    """The clean dataset with one of each problem seeded in."""
    root = tmp_path / "broken"
    shutil.copytree(clean, root)
    train = root / "train" / CLASSES[0]
    files = sorted(train.iterdir())
    data = files[0].read_bytes()
    middle = len(data) // 2
    files[0].write_bytes(data[:middle] + b"\xff" * 64 + data[middle + 64 :])  # corrupt entropy data
    files[1].write_bytes(files[1].read_bytes()[: len(data) // 2])  # truncated
    files[2].write_bytes(b"")  # empty
    (root / "train" / CLASSES[1] / "notes.jpg").write_text("this is a text file, not a photo\n")
    shutil.rmtree(root / "valid" / CLASSES[2])  # class missing from valid
    return root


def _paths(report_issues: list[Issue], kind: str) -> list[str]:
    return [issue.path for issue in report_issues if issue.kind == kind]


def test_clean_synthetic_dataset_passes(clean: Path) -> None:
    report = check_directory(clean)
    assert report.ok, report.to_text()
    assert report.classes == CLASSES
    assert report.split_counts == {"train": 12, "valid": 6, "test": 6}
    assert report.missing_classes == {"train": [], "valid": [], "test": []}
    assert report.manifest_id == "synth-c3-m4-px32-s1"
    assert report.issues == []


def test_seeded_problems_are_each_reported(broken: Path) -> None:
    report = check_directory(broken)
    assert not report.ok
    train0 = f"train/{CLASSES[0]}"
    names = sorted(p.name for p in (broken / "train" / CLASSES[0]).iterdir())
    assert _paths(report.issues, "corrupt") == [f"{train0}/{names[0]}"]
    assert _paths(report.issues, "truncated") == [f"{train0}/{names[1]}"]
    assert _paths(report.issues, "empty") == [f"{train0}/{names[2]}"]
    assert _paths(report.issues, "not_image") == [f"train/{CLASSES[1]}/notes.jpg"]
    assert "text" in report.issues_of("not_image")[0].detail
    assert report.missing_classes["valid"] == [CLASSES[2]]
    assert _paths(report.issues, "missing_class") == [f"valid/{CLASSES[2]}"]
    # the manifest still promises the deleted and added files
    assert report.issues_of("manifest_mismatch")
    # bad files are not counted as images
    assert report.class_counts["train"][CLASSES[0]] == 1
    assert report.split_counts["valid"] == 4


def test_report_text_is_readable(broken: Path) -> None:
    text = check_directory(broken).to_text()
    assert "FAILED" in text
    assert "classes: 3" in text
    assert f"valid        4        2  {CLASSES[2]}" in text
    for heading in ("corrupt image", "truncated image", "empty file", "not an image", "class missing"):
        assert heading in text
    assert "Fix the errors above" in text


def test_cli_exits_non_zero_with_report(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "notes.jpg: text, not an image" in out


def test_cli_json_report(clean: Path, broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(clean), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["data", "check", str(broken), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert document["num_classes"] == 3
    assert document["missing_classes"]["valid"] == [CLASSES[2]]
    assert {"corrupt", "truncated", "empty", "not_image", "missing_class"} <= {
        i["kind"] for i in document["issues"]
    }


def test_cli_missing_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_parent_of_extracted_zip_gets_a_hint(clean: Path, tmp_path: Path) -> None:
    shutil.copytree(clean, tmp_path / "dogImages")
    with pytest.raises(DatasetPathError, match=r"did you mean .*dogImages"):
        check_directory(tmp_path)


def test_files_and_folders_outside_the_layout(clean: Path, tmp_path: Path) -> None:
    root = tmp_path / "stray"
    shutil.copytree(clean, root)
    (root / "notes.txt").write_text("hello")
    (root / "train" / "index.csv").write_text("a,b")
    (root / "train" / "misc").mkdir()
    (root / "train" / "misc" / "x.jpg").write_bytes((root / "manifest.json").read_bytes())
    (root / "extras").mkdir()
    (root / "extras" / "y.jpg").write_bytes(b"")
    report = check_directory(root)
    assert _paths(report.warnings, "unexpected_file") == ["extras/", "notes.txt", "train/index.csv"]
    # a non-class folder in a split would become a bogus class in training
    assert _paths(report.errors, "unexpected_dir") == ["train/misc/"]
    assert report.classes == CLASSES


def test_png_named_jpg_is_a_warning_not_an_error(clean: Path, tmp_path: Path) -> None:
    root = tmp_path / "png"
    shutil.copytree(clean, root)
    target = next((root / "test" / CLASSES[0]).iterdir())
    buffer = io.BytesIO()
    Image.open(target).save(buffer, "PNG")
    target.write_bytes(buffer.getvalue())
    report = check_directory(root)
    assert report.ok
    assert [issue.detail for issue in report.warnings] == ["PNG image with '.jpg'"]


def test_duplicate_class_numbers_are_an_error(clean: Path, tmp_path: Path) -> None:
    root = tmp_path / "dup"
    shutil.copytree(clean, root)
    (root / "manifest.json").unlink()
    for split in ("train", "valid", "test"):
        shutil.copytree(root / split / CLASSES[0], root / split / "001.Other_dog")
    report = check_directory(root)
    assert _paths(report.errors, "duplicate_class_number") == ["001"]


def test_expected_counts_are_enforced(clean: Path) -> None:
    report = check_directory(clean, expected_classes=CLASSES[:2], expected_split_counts={"train": 13})
    assert {issue.path for issue in report.issues_of("unexpected_count")} == {"classes", "train/"}


def test_truncation_is_caught_even_when_the_process_allows_truncated_images(clean: Path) -> None:
    data = next((clean / "train" / CLASSES[0]).iterdir()).read_bytes()
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with strict_truncation():
            result = inspect_image(data[: len(data) - 40])
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
    assert getattr(result, "kind", None) == "truncated"


def test_unreadable_entry_is_reported_not_raised() -> None:
    def fail() -> bytes:
        raise ConnectionError("storage went away")

    good = DatasetEntry("train/001.Affenpinscher/a.jpg", 10, fail)
    report = check_entries([good], source="memory")
    assert [issue.detail for issue in report.issues_of("unreadable")] == ["cannot read: storage went away"]


def test_s3_prefix_gives_the_same_report_as_the_folder(broken: Path) -> None:
    local = check_directory(broken).to_dict()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        for entry in iter_directory(broken):
            s3.put_object(Bucket="data", Key=f"datasets/v1/{entry.path}", Body=entry.read())
        s3.put_object(Bucket="data", Key="datasets/v1/train/", Body=b"")  # console "folder" marker
        s3.put_object(Bucket="data", Key="datasets/v10/train/001.Affenpinscher/z.jpg", Body=b"")
        remote = check_entries(iter_s3_prefix(s3, "data", "datasets/v1", page_size=7), source="s3").to_dict()
    local.pop("source")
    remote.pop("source")
    assert remote == local


def test_manifest_round_trip_and_validation(clean: Path) -> None:
    manifest = Manifest.read(clean)
    assert Manifest.from_json(manifest.to_json()) == manifest
    with pytest.raises(ManifestError, match="dataset_id"):
        Manifest.from_dict({**manifest.to_dict(), "dataset_id": "../escape"})
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.from_json("{nope")
    with pytest.raises(ManifestError, match="missing classes"):
        Manifest.from_dict({"dataset_id": "a", "splits": {}, "created_by": "x"})
    with pytest.raises(ManifestError, match="splits"):
        Manifest.from_dict({**manifest.to_dict(), "splits": {"train": 1}})


def test_invalid_manifest_fails_the_check(clean: Path, tmp_path: Path) -> None:
    root = tmp_path / "badmanifest"
    shutil.copytree(clean, root)
    (root / "manifest.json").write_text('{"dataset_id": "x"}')
    report = check_directory(root)
    assert _paths(report.errors, "manifest_invalid") == ["manifest.json"]
