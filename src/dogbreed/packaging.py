"""The training code package SageMaker runs: `training_job/` plus the shared torch-free packages.

The one copy of `dataset_check` and `request_guards` lives in the Lambda layer's directory
(`functions/shared/`, the `SharedCodeLayer` of template.yaml). The training job needs them too
(train.py checks the dataset; inference.py, which training copies into `model.tar.gz`, guards its
input), so the source directory SageMaker unpacks (`sagemaker_submit_directory`) is built here:

    build_source_dir(dest)          # training_job/'s files + the shared packages, real files only
    archive = source_tarball()      # the same files as a reproducible sourcedir.tar.gz, in memory
    archive.version                 # content hash: a changed file gives a new version

The deploy uploads `archive.data` to `s3://<DataBucket>/code/<archive.version>/sourcedir.tar.gz`
(the template's TrainingCodeVersion); the local SageMaker gets the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from dogbreed import LAMBDA_SHARED_DIR, TRAINING_JOB_DIR

ARCHIVE_NAME = "sourcedir.tar.gz"
# Packages of the layer directory that the training job imports (train.py, dogbreed_job, inference.py).
TRAINING_SHARED_PACKAGES: tuple[str, ...] = ("dataset_check", "request_guards", "model_monitor")
# Characters of the content hash in the version (the TrainingCodeVersion parameter's pattern allows it).
VERSION_CHARS = 16
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})


class PackagingError(RuntimeError):
    """The training code package cannot be built as SageMaker needs it."""


@dataclass(frozen=True)
class SourceArchive:
    """sourcedir.tar.gz: the same files always give the same bytes and the same content hash."""

    data: bytes
    content_hash: str  # sha256 over every member's name and bytes

    @property
    def version(self) -> str:
        return self.content_hash[:VERSION_CHARS]

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data)
        return path


def _files_under(root: Path, prefix: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if _SKIPPED_DIRS.intersection(relative.parts) or path.suffix in _SKIPPED_SUFFIXES:
            continue
        if path.is_symlink():
            raise PackagingError(f"{path} is a symlink; the training code package holds real files only")
        if path.is_file():
            found[f"{prefix}{relative.as_posix()}"] = path
    return found


def source_files(
    *, training_dir: Path = TRAINING_JOB_DIR, shared_dir: Path = LAMBDA_SHARED_DIR
) -> dict[str, Path]:
    """Archive name -> file: every file of `training_dir` and the shared packages beside them."""
    files = _files_under(training_dir, "")
    for package in TRAINING_SHARED_PACKAGES:
        package_dir = shared_dir / package
        if not (package_dir / "__init__.py").is_file():
            raise PackagingError(f"{package_dir} is not a package")
        if (training_dir / package).exists():
            raise PackagingError(
                f"{training_dir / package} shadows the shared {package}; keep one copy, in {shared_dir}"
            )
        files.update(_files_under(package_dir, f"{package}/"))
    return dict(sorted(files.items()))


def content_hash(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def build_source_dir(
    dest: Path, *, training_dir: Path = TRAINING_JOB_DIR, shared_dir: Path = LAMBDA_SHARED_DIR
) -> Path:
    """Copy the training code package into `dest` (created; it must not exist or be empty)."""
    if dest.exists() and any(dest.iterdir()):
        raise PackagingError(f"{dest} is not empty")
    for name, path in source_files(training_dir=training_dir, shared_dir=shared_dir).items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dest


def source_tarball(
    *, training_dir: Path = TRAINING_JOB_DIR, shared_dir: Path = LAMBDA_SHARED_DIR
) -> SourceArchive:
    """The training code package as a reproducible tar.gz (fixed times, owners and modes)."""
    files = source_files(training_dir=training_dir, shared_dir=shared_dir)
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too: the same files give byte-identical archives.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in files.items():
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return SourceArchive(data=buffer.getvalue(), content_hash=content_hash(files))
