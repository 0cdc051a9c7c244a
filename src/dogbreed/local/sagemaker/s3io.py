"""S3 transfers done by the backend (the parent process), never by the job's children: in-process
moto (`mock_aws`) is invisible to subprocesses, and on SageMaker the platform moves the data too."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Any

from dogbreed.local.sagemaker._aws import join_s3, parse_s3_uri


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if uri.startswith("/"):
        return Path(uri)
    return None


def download_prefix(s3: Any, uri: str, dest: Path) -> int:
    """Copy every object under `uri` (an S3 prefix, or a local dir for convenience) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    local = _local_path(uri)
    if local is not None:
        if local.is_dir():
            shutil.copytree(local, dest, dirs_exist_ok=True)
            return sum(1 for path in dest.rglob("*") if path.is_file())
        shutil.copy2(local, dest / local.name)
        return 1
    bucket, prefix = parse_s3_uri(uri)
    count = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            relative = key[len(prefix) :].lstrip("/") if key != prefix else Path(key).name
            target = (dest / relative).resolve()
            if dest.resolve() not in target.parents:
                raise ValueError(f"object key escapes the channel directory: {key!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            count += 1
    return count


def download_file(s3: Any, uri: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = _local_path(uri)
    if local is not None:
        shutil.copy2(local, dest)
        return dest
    bucket, key = parse_s3_uri(uri)
    s3.download_file(bucket, key, str(dest))
    return dest


def upload_file(s3: Any, path: Path, uri: str) -> None:
    bucket, key = parse_s3_uri(uri)
    s3.upload_file(str(path), bucket, key)


def sync_up(s3: Any, local_dir: Path, uri: str, seen: dict[str, tuple[float, int]]) -> int:
    """Upload files of `local_dir` that are new or changed since the last call (tracked in `seen`)."""
    uploaded = 0
    if not local_dir.is_dir():
        return 0
    for path in sorted(local_dir.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(local_dir).as_posix()
        try:
            stat = path.stat()
        except FileNotFoundError:  # the script may be rotating checkpoints
            continue
        signature = (stat.st_mtime, stat.st_size)
        if seen.get(relative) == signature:
            continue
        upload_file(s3, path, join_s3(uri, relative))
        seen[relative] = signature
        uploaded += 1
    return uploaded


def pack_dir(source: Path, archive: Path) -> Path:
    """tar.gz the directory's contents at the archive root, as SageMaker packs /opt/ml/model."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def extract_archive(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(dest, filter="data")
    return dest


def fetch_source_dir(s3: Any, uri: str, dest: Path) -> Path:
    """`sagemaker_submit_directory`: an s3:// or file:// tar.gz, or a local directory."""
    local = _local_path(uri)
    if local is not None and local.is_dir():
        shutil.copytree(local, dest, dirs_exist_ok=True)
        return dest
    archive = download_file(s3, uri, dest.parent / "sourcedir.tar.gz")
    return extract_archive(archive, dest)
