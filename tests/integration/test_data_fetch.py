"""`dogbreed data fetch` against a real HTTP server on 127.0.0.1 that serves a small dogImages-style
zip and honours (or, on request, ignores) Range requests."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from dataset_check.manifest import Manifest

from dogbreed.cli import main
from dogbreed.data.check import check_directory
from dogbreed.data.fetch import DOGIMAGES_EXPECTATION, DOGIMAGES_URL, Expectation, FetchError, fetch
from dogbreed.data.synth import synthesize


@dataclass
class Archive:
    """What the server serves, how it misbehaves, and what it was asked."""

    payload: bytes = b""
    truncate_responses: int = 0  # cut this many responses short (full Content-Length, half the body)
    ignore_range: bool = False
    wrong_offset: bool = False  # answer a Range request from byte 0 with a 206
    status: int = 200
    ranges: list[str | None] = field(default_factory=list)


def _make_handler(archive: Archive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            archive.ranges.append(self.headers.get("Range"))
            if archive.status != 200:
                self.send_error(archive.status)
                return
            body, start = archive.payload, 0
            requested = self.headers.get("Range")
            if requested and not archive.ignore_range:
                start = 0 if archive.wrong_offset else int(requested.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            remaining = body[start:]
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(remaining)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if archive.truncate_responses > 0:
                archive.truncate_responses -= 1
                self.wfile.write(remaining[: len(remaining) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(remaining)

    return Handler


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 3-class dataset zipped the way dogImages.zip is: everything under dogImages/."""
    root = synthesize(tmp_path_factory.mktemp("zipsrc") / "ds", classes=3, per_class=4, size=24, seed=5)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "manifest.json":
                bundle.write(path, f"dogImages/{path.relative_to(root).as_posix()}")
        bundle.writestr("__MACOSX/dogImages/._train", b"resource fork")
        # incompressible padding, so the archive spans several download chunks
        bundle.writestr("dogImages/LICENSE.txt", np.random.default_rng(0).bytes(400_000))
    return buffer.getvalue()


@pytest.fixture
def server(dataset_zip: bytes) -> Iterator[tuple[str, Archive]]:
    archive = Archive(payload=dataset_zip)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(archive))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/dogImages.zip", archive
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_fetch_downloads_verifies_extracts_and_writes_manifest(
    server: tuple[str, Archive], tmp_path: Path
) -> None:
    url, archive = server
    root = fetch(tmp_path, url=url, progress=False)
    assert root == tmp_path / "dogImages"
    manifest = Manifest.read(root)
    assert manifest.num_classes == 3
    assert manifest.splits == {"train": 12, "valid": 6, "test": 6}
    assert manifest.source == "dogimages"
    assert not (tmp_path / "__MACOSX").exists()
    assert not (tmp_path / "dogImages.zip").exists() and not (tmp_path / "dogImages.zip.part").exists()
    assert check_directory(root).ok
    assert archive.ranges == [None]


def test_resume_after_a_truncated_first_attempt(server: tuple[str, Archive], tmp_path: Path) -> None:
    url, archive = server
    archive.truncate_responses = 1
    with pytest.raises(FetchError, match=r"interrupted .* run the same command again to resume"):
        fetch(tmp_path, url=url, retries=0, progress=False)
    part = tmp_path / "dogImages.zip.part"
    partial = part.stat().st_size
    assert 0 < partial < len(archive.payload)

    root = fetch(tmp_path, url=url, retries=0, progress=False, keep_zip=True)
    assert archive.ranges == [None, f"bytes={partial}-"]
    assert (tmp_path / "dogImages.zip").read_bytes() == archive.payload
    assert not part.exists()
    assert check_directory(root).ok


def test_dropped_connection_is_retried_within_one_run(server: tuple[str, Archive], tmp_path: Path) -> None:
    url, archive = server
    archive.truncate_responses = 2
    fetch(tmp_path, url=url, retries=3, progress=False, keep_zip=True)
    assert len(archive.ranges) == 3 and all(r and r.startswith("bytes=") for r in archive.ranges[1:])
    assert (tmp_path / "dogImages.zip").read_bytes() == archive.payload


def test_server_that_ignores_range_restarts_from_zero(server: tuple[str, Archive], tmp_path: Path) -> None:
    url, archive = server
    archive.ignore_range = True
    (tmp_path / "dogImages.zip.part").write_bytes(b"stale bytes that must not survive")
    fetch(tmp_path, url=url, progress=False, keep_zip=True)
    assert archive.ranges == ["bytes=33-"]
    assert (tmp_path / "dogImages.zip").read_bytes() == archive.payload


def test_range_answer_from_the_wrong_offset_restarts_the_download(
    server: tuple[str, Archive], tmp_path: Path
) -> None:
    url, archive = server
    archive.wrong_offset = True
    part = tmp_path / "dogImages.zip.part"
    part.write_bytes(archive.payload[:1000])
    with pytest.raises(FetchError, match="sent bytes from 0, not from 1000"):
        fetch(tmp_path, url=url, progress=False)
    assert not part.exists()
    fetch(tmp_path, url=url, progress=False, keep_zip=True)
    assert (tmp_path / "dogImages.zip").read_bytes() == archive.payload


def test_complete_part_file_is_finished_without_new_bytes(
    server: tuple[str, Archive], tmp_path: Path
) -> None:
    url, archive = server
    (tmp_path / "dogImages.zip.part").write_bytes(archive.payload)
    root = fetch(tmp_path, url=url, progress=False)
    assert archive.ranges == [f"bytes={len(archive.payload)}-"]
    assert Manifest.read(root).num_classes == 3


def test_sha256_is_checked(server: tuple[str, Archive], tmp_path: Path) -> None:
    url, archive = server
    with pytest.raises(FetchError, match="SHA-256"):
        fetch(tmp_path / "a", url=url, sha256="0" * 64, progress=False)
    assert not (tmp_path / "a" / "dogImages.zip").exists()  # a bad download is not kept
    good = hashlib.sha256(archive.payload).hexdigest()
    assert Manifest.read(fetch(tmp_path / "b", url=url, sha256=good, progress=False)).num_classes == 3


def test_crc_failure_is_reported(server: tuple[str, Archive], tmp_path: Path) -> None:
    url, archive = server
    damaged = bytearray(archive.payload)
    member_data = damaged.index(b"\xff\xd8\xff") + 200  # inside the first stored JPEG
    damaged[member_data] ^= 0xFF
    archive.payload = bytes(damaged)
    with pytest.raises(FetchError, match="CRC"):
        fetch(tmp_path, url=url, progress=False)
    assert not (tmp_path / "dogImages.zip").exists()


def test_unexpected_counts_fail_the_integrity_check(server: tuple[str, Archive], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(FetchError, match="train has 12 images, expected 6680"):
        fetch(tmp_path, url=url, expect=Expectation(split_counts={"train": 6680}), progress=False)
    assert not (tmp_path / "dogImages").exists()


def test_public_url_expects_the_published_dogimages_counts() -> None:
    assert DOGIMAGES_URL.endswith("/dog-project/dogImages.zip")
    assert DOGIMAGES_EXPECTATION.split_counts == {"train": 6680, "valid": 835, "test": 836}
    assert DOGIMAGES_EXPECTATION.classes is not None and len(DOGIMAGES_EXPECTATION.classes) == 133


def test_http_error_is_one_line(server: tuple[str, Archive], tmp_path: Path) -> None:
    url, archive = server
    archive.status = 404
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(tmp_path, url=url, progress=False)


def test_cli_fetch_reports_dataset_and_next_step(
    server: tuple[str, Archive], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = server
    assert main(["data", "fetch", "--out", str(tmp_path), "--url", url, "--expect-counts", "12,6,6"]) == 0
    out = capsys.readouterr().out
    assert "3 classes; train 12, valid 6, test 6 images" in out
    assert f"dogbreed data check {tmp_path / 'dogImages'}" in out
    # a second run finds the dataset and does not download again
    assert main(["data", "fetch", "--out", str(tmp_path), "--url", url]) == 0


def test_cli_count_mismatch_exits_non_zero(
    server: tuple[str, Archive], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = server
    assert main(["data", "fetch", "--out", str(tmp_path), "--url", url, "--expect-counts", "1,2,3"]) == 1
    assert "integrity check failed" in capsys.readouterr().err


def test_offline_gives_one_clear_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rc = main(["data", "fetch", "--out", str(tmp_path), "--url", f"http://127.0.0.1:{port}/dogImages.zip"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1
    assert "cannot reach 127.0.0.1 (connection refused)" in err
    assert "dogbreed data synth" in err
    assert "Traceback" not in err
