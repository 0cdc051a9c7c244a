"""Dataset listings: what the checker sees of a dataset, wherever it is stored."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DatasetEntry:
    """One file of a dataset. `path` is relative to the dataset root with "/" separators
    (e.g. "train/001.Affenpinscher/Affenpinscher_00001.jpg"); `read` fetches its bytes on demand."""

    path: str
    size: int
    read: Callable[[], bytes] = field(repr=False, compare=False)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    @property
    def name(self) -> str:
        return self.parts[-1]


def _file_reader(path: Path) -> Callable[[], bytes]:
    return path.read_bytes


def iter_directory(root: Path | str) -> Iterator[DatasetEntry]:
    """Every file under `root`, in sorted order. Symbolic links to files are followed."""
    base = Path(root)
    if not base.is_dir():
        raise NotADirectoryError(f"{base} is not a directory")
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        here = Path(dirpath)
        for filename in sorted(filenames):
            path = here / filename
            try:
                size = path.stat().st_size
            except OSError:  # a dangling link: still an entry, and reading it will fail
                size = 0
            yield DatasetEntry(path.relative_to(base).as_posix(), size, _file_reader(path))


def _object_reader(s3_client: Any, bucket: str, key: str) -> Callable[[], bytes]:
    def read() -> bytes:
        body: bytes = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    return read


def iter_s3_prefix(
    s3_client: Any, bucket: str, prefix: str, *, page_size: int | None = None
) -> Iterator[DatasetEntry]:
    """Every object under `s3://bucket/prefix/` (list_objects_v2 pages); bytes come from get_object
    when an entry is read. "Folder" marker objects (keys ending in "/") are skipped."""
    base = prefix.strip("/")
    base = f"{base}/" if base else ""
    paginator = s3_client.get_paginator("list_objects_v2")
    pagination = {"PageSize": page_size} if page_size else {}
    for page in paginator.paginate(Bucket=bucket, Prefix=base, PaginationConfig=pagination):
        for obj in page.get("Contents", []):
            key: str = obj["Key"]
            relative = key[len(base) :]
            if not relative or key.endswith("/"):
                continue
            yield DatasetEntry(relative, int(obj.get("Size", 0)), _object_reader(s3_client, bucket, key))
