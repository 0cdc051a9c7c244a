"""The training code package (`dogbreed.packaging`): training_job/ plus the shared packages whose one
copy lives in the Lambda layer's directory, as real files, reproducible and versioned by content."""

from __future__ import annotations

import ast
import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dogbreed import FUNCTIONS_DIR, LAMBDA_SHARED_DIR, REPO_ROOT, TRAINING_JOB_DIR
from dogbreed.packaging import (
    TRAINING_SHARED_PACKAGES,
    PackagingError,
    build_source_dir,
    source_tarball,
)

# What the SageMaker PyTorch containers bring (the framework, its image stack, the toolkits and boto3);
# everything else the training code imports must be in the package or in its requirements.txt.
CONTAINER_PROVIDED = frozenset(
    {"torch", "torchvision", "numpy", "PIL", "boto3", "botocore", "sagemaker_inference"}
)


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {}
        for member in tar.getmembers():
            assert member.isfile(), member.name  # real files only: no links, no directories needed
            extracted = tar.extractfile(member)
            assert extracted is not None
            members[member.name] = extracted.read()
    return members


def _copy_sources(tmp_path: Path) -> tuple[Path, Path]:
    training, shared = tmp_path / "training_job", tmp_path / "shared"
    shutil.copytree(TRAINING_JOB_DIR, training, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(LAMBDA_SHARED_DIR, shared, ignore=shutil.ignore_patterns("__pycache__"))
    return training, shared


def test_the_tarball_holds_training_job_and_the_shared_packages() -> None:
    members = _members(source_tarball().data)

    assert {"train.py", "inference.py", "requirements.txt", "dogbreed_job/__init__.py"} <= set(members)
    for package in TRAINING_SHARED_PACKAGES:
        assert members[f"{package}/__init__.py"] == (LAMBDA_SHARED_DIR / package / "__init__.py").read_bytes()
    assert not [name for name in members if "__pycache__" in name or name.endswith(".pyc")]
    # The Lambda-only code of the layer stays out of the training job
    assert not [name for name in members if name.startswith(("prediction/", "dataset_gate"))]


def test_the_same_files_give_the_same_bytes_and_version() -> None:
    first, second = source_tarball(), source_tarball()

    assert first.data == second.data
    assert first.version == second.version
    assert len(first.version) == 16 and first.version.isalnum()


@pytest.mark.parametrize("changed", ["training_job/train.py", "shared/dataset_check/layout.py"])
def test_a_changed_file_gives_a_new_version(tmp_path: Path, changed: str) -> None:
    training, shared = _copy_sources(tmp_path)
    before = source_tarball(training_dir=training, shared_dir=shared)

    with (tmp_path / changed).open("a") as handle:
        handle.write("\n# changed\n")
    after = source_tarball(training_dir=training, shared_dir=shared)

    assert after.version != before.version
    assert after.data != before.data


def test_the_source_dir_holds_the_tarballs_files(tmp_path: Path) -> None:
    dest = build_source_dir(tmp_path / "sourcedir")

    files = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert files == _members(source_tarball().data)


def test_a_symlink_in_the_sources_is_refused(tmp_path: Path) -> None:
    training, shared = _copy_sources(tmp_path)
    (training / "linked.py").symlink_to(training / "train.py")

    with pytest.raises(PackagingError, match="symlink"):
        source_tarball(training_dir=training, shared_dir=shared)


def test_a_second_copy_of_a_shared_package_is_refused(tmp_path: Path) -> None:
    training, shared = _copy_sources(tmp_path)
    shutil.copytree(shared / "request_guards", training / "request_guards")

    with pytest.raises(PackagingError, match="one copy"):
        source_tarball(training_dir=training, shared_dir=shared)


def _imported_top_level_names(sources: dict[str, bytes]) -> set[str]:
    names: set[str] = set()
    for name, data in sources.items():
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(data)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_everything_the_training_code_imports_ships_or_comes_with_the_container() -> None:
    members = _members(source_tarball().data)
    packaged = {name.split("/", 1)[0].removesuffix(".py") for name in members}
    required = {
        line.split("==", 1)[0].strip().lower()
        for line in members["requirements.txt"].decode().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }

    imported = _imported_top_level_names(members) - set(sys.stdlib_module_names) - {"__future__"}
    unresolved = imported - packaged - CONTAINER_PROVIDED - required
    assert unresolved == set()


def test_each_shared_module_has_exactly_one_copy_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    shared_names = {path.name for path in LAMBDA_SHARED_DIR.iterdir() if path.name != "requirements.txt"}

    copies = [path for path in tracked if set(Path(path).parts) & shared_names]
    assert copies and all(path.startswith("functions/shared/") for path in copies), copies


@pytest.mark.parametrize("root", [FUNCTIONS_DIR, TRAINING_JOB_DIR], ids=lambda p: p.name)
def test_no_symlinks_in_the_product_code(root: Path) -> None:
    assert [path for path in root.rglob("*") if path.is_symlink()] == []
