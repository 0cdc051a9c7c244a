"""`dogbreed data fetch`: download, verify and extract the public dogImages dataset.

- Resumable: bytes land in `<zip>.part`; a later run (or a retry in the same run) asks for the
  rest with an HTTP Range request. A server that ignores Range (200 instead of 206) restarts the
  download from zero rather than corrupting the file.
- Integrity: optional SHA-256, the CRC of every zip member, and the expected classes and per-split
  image counts (133 breeds, 6,680 / 835 / 836 for the published archive).
- Offline: one line that says the host cannot be reached and suggests `dogbreed data synth`.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlsplit

import requests
from dataset_check.breeds import DOGIMAGES_CLASSES
from dataset_check.layout import (
    CLASS_DIR_PATTERN,
    DOGIMAGES_SPLIT_COUNTS,
    MANIFEST_NAME,
    SPLITS,
    has_image_suffix,
)
from dataset_check.manifest import Manifest
from tqdm import tqdm

from dogbreed import __version__

DOGIMAGES_URL = "https://s3-us-west-1.amazonaws.com/udacity-aind/dog-project/dogImages.zip"
# The folder the archive extracts to; the dataset root is <out>/dogImages.
ARCHIVE_ROOT = "dogImages"
# Bytes of a chunk cut short by a dropped connection are lost, so chunks stay small enough that a
# resume repeats little.
CHUNK_SIZE = 64 * 1024
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0
_DELETED = "deleted it, run the same command again to download afresh"


# What a dropped connection looks like while the body streams.
_INTERRUPTIONS = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout)


class FetchError(RuntimeError):
    """A download, integrity or extraction failure, with a one-line message for the user."""


@dataclass(frozen=True)
class Expectation:
    classes: Sequence[str] | None = None
    split_counts: Mapping[str, int] | None = None


DOGIMAGES_EXPECTATION = Expectation(classes=DOGIMAGES_CLASSES, split_counts=DOGIMAGES_SPLIT_COUNTS)


def _reason(exc: BaseException) -> str:
    """The most telling cause in an exception chain, in a few words."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host name does not resolve"
        if isinstance(current, TimeoutError):
            return "timed out"
        # requests and urllib3 wrap the socket error in args as well as in __cause__/__context__
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return type(exc).__name__


def _open(url: str, offset: int) -> requests.Response:
    headers = {"Accept-Encoding": "identity"}  # byte offsets must be offsets into the file itself
    if offset:
        headers["Range"] = f"bytes={offset}-"
    host = urlsplit(url).hostname or url
    try:
        response = requests.get(
            url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise FetchError(
            f"cannot reach {host} ({_reason(exc)}): this machine looks offline or blocked; "
            "use `dogbreed data synth` for a synthetic dataset"
        ) from exc
    return response


def _content_range_start(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Range", "")  # "bytes 100-999/1000"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _stream(response: requests.Response, sink: IO[bytes], bar: tqdm) -> None:
    for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
        sink.write(chunk)
        bar.update(len(chunk))


def download(url: str, dest: Path, *, retries: int = 3, progress: bool = True) -> Path:
    """Download `url` to `dest` through `dest.part`, resuming from what is already there."""
    part = dest.with_name(dest.name + ".part")
    attempts = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        response = _open(url, offset)
        with response:
            if response.status_code == 416 and offset:
                # Nothing left to send: the part file already holds the whole body.
                break
            if response.status_code == 206:
                start = _content_range_start(response)
                if start != offset:
                    part.unlink(missing_ok=True)  # unusable answer: the next attempt starts over
                    raise FetchError(f"{url} sent bytes from {start}, not from {offset}; run again")
                mode = "ab"
            elif response.status_code == 200:
                offset, mode = 0, "wb"  # the server ignored Range: start over
            else:
                raise FetchError(f"download of {url} failed: HTTP {response.status_code} {response.reason}")
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            with (
                part.open(mode) as sink,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                ) as bar,
            ):
                try:
                    _stream(response, sink, bar)
                    interrupted: BaseException | None = None
                except (
                    requests.ConnectionError,
                    requests.exceptions.ChunkedEncodingError,
                    requests.Timeout,
                ) as exc:
                    interrupted = exc
            received = part.stat().st_size
            if interrupted is None and (total is None or received == total):
                break
        attempts += 1
        if attempts > retries:
            got = f"{received} of {total}" if total else f"{received}"
            raise FetchError(
                f"download of {url} interrupted at {got} bytes; run the same command again to resume"
            )
    part.replace(dest)
    return dest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def _member_path(name: str) -> PurePosixPath | None:
    """The member's path if it belongs to the dataset folder; unsafe names raise."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise FetchError(f"archive member {name!r} points outside the extraction folder; refusing to extract")
    if not path.parts or path.parts[0] != ARCHIVE_ROOT:
        return None  # e.g. __MACOSX/ resource forks
    return path


def verify_archive(archive: Path, expect: Expectation) -> tuple[list[str], dict[str, int]]:
    """Check CRCs and the layout inside the zip; returns (classes, image count per split)."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            bad = bundle.testzip()
            names = bundle.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        archive.unlink(missing_ok=True)
        raise FetchError(
            f"{archive.name} is not a valid zip ({exc}); deleted it, run again to download afresh"
        ) from exc
    if bad is not None:
        archive.unlink(missing_ok=True)
        raise FetchError(
            f"{archive.name} failed its CRC check at {bad}; deleted it, run again to download afresh"
        )
    counts: Counter[str] = Counter()
    classes: dict[str, set[str]] = {split: set() for split in SPLITS}
    for name in names:
        path = _member_path(name)
        if path is None or name.endswith("/") or len(path.parts) != 4:
            continue
        _, split, class_dir, filename = path.parts
        if split in classes and CLASS_DIR_PATTERN.match(class_dir) and has_image_suffix(filename):
            counts[split] += 1
            classes[split].add(class_dir)
    found = sorted(set().union(*classes.values()))
    if not found:
        raise FetchError(f"{archive.name} holds no {ARCHIVE_ROOT}/<split>/NNN.Breed_Name/ images")
    for split in SPLITS:
        if classes[split] != set(found):
            raise FetchError(
                f"integrity check failed: {split} holds {len(classes[split])} of {len(found)} classes"
            )
    if expect.classes is not None and found != list(expect.classes):
        raise FetchError(f"integrity check failed: {len(found)} classes, expected {len(expect.classes)}")
    if expect.split_counts is not None:
        for split, wanted in expect.split_counts.items():
            if counts[split] != wanted:
                raise FetchError(
                    f"integrity check failed: {split} has {counts[split]} images, expected {wanted}"
                )
    return found, {split: counts[split] for split in SPLITS}


def extract(archive: Path, out_dir: Path) -> Path:
    """Extract the dataset folder through a temporary folder, so a partial extraction never looks
    like a dataset."""
    target = out_dir / ARCHIVE_ROOT
    staging = out_dir / f".{ARCHIVE_ROOT}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(archive) as bundle:
        members = [info for info in bundle.infolist() if _member_path(info.filename) is not None]
        bundle.extractall(staging, members=members)
    if target.exists():
        shutil.rmtree(target)
    (staging / ARCHIVE_ROOT).replace(target)
    staging.rmdir()
    return target


def fetch(
    out_dir: Path | str,
    *,
    url: str = DOGIMAGES_URL,
    sha256: str | None = None,
    expect: Expectation | None = None,
    dataset_id: str = "dogimages",
    keep_zip: bool = False,
    force: bool = False,
    retries: int = 3,
    progress: bool = True,
) -> Path:
    """Download, verify and extract the archive at `url` into `out_dir`; returns the dataset root
    (`out_dir/dogImages`, with a manifest.json)."""
    if expect is None:
        expect = DOGIMAGES_EXPECTATION if url == DOGIMAGES_URL else Expectation()
    out = Path(out_dir)
    root = out / ARCHIVE_ROOT
    if (root / MANIFEST_NAME).exists() and not force:
        return root
    out.mkdir(parents=True, exist_ok=True)
    archive = out / (PurePosixPath(urlsplit(url).path).name or f"{ARCHIVE_ROOT}.zip")
    if not archive.exists():
        download(url, archive, retries=retries, progress=progress)
    if sha256 is not None:
        actual = sha256_of(archive)
        if actual.lower() != sha256.lower():
            archive.unlink()
            raise FetchError(f"{archive.name} has SHA-256 {actual}, expected {sha256}; {_DELETED}")
    classes, counts = verify_archive(archive, expect)
    root = extract(archive, out)
    Manifest(
        dataset_id=dataset_id,
        classes=tuple(classes),
        splits=counts,
        created_by=f"dogbreed {__version__} data fetch",
        source="dogimages",
        params={"url": url},
    ).write(root)
    if not keep_zip:
        archive.unlink()
    return root
