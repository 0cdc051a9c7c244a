"""`dogbreed bench endpoint`: it runs and reports (no thresholds: the figures are for people, and timing
belongs in the benchmark, not in a pass/fail test). `make test` runs it at its smallest size (--quick,
one request per concurrency level's minimum); `make reliability` runs the full benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scale import FULL_SCALE

# Each level sends max(--requests, its concurrency) requests: --requests 1 is the smallest run.
SIZE = [] if FULL_SCALE else ["--quick", "--requests", "1"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200 if FULL_SCALE else 600)]

LEVEL_KEYS = {
    "concurrency",
    "server_images_per_s",
    "baseline_images_per_s",
    "ratio",
    "server_p50_ms",
    "server_p99_ms",
    "baseline_p50_ms",
    "baseline_p99_ms",
    "top1_agreement",
}


def test_the_benchmark_runs_and_writes_the_json_report(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "dogbreed", "bench", "endpoint", *SIZE, "--json-file", str(report_path)],
        capture_output=True,
        text=True,
        timeout=900 if FULL_SCALE else 300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert set(report) == {"machine", "model", "levels"}
    assert report["machine"]["cores"] >= 1
    assert report["model"]["architecture"] == "resnet50"
    assert [level["concurrency"] for level in report["levels"]] == [1, 4, 16]
    for level in report["levels"]:
        assert set(level) == LEVEL_KEYS
        assert level["server_images_per_s"] > 0 and level["baseline_images_per_s"] > 0
        assert level["ratio"] == pytest.approx(
            level["server_images_per_s"] / level["baseline_images_per_s"], rel=0.02
        )
        assert level["server_p50_ms"] <= level["server_p99_ms"]
        assert 0.0 <= level["top1_agreement"] <= 1.0
    assert report["model"]["errors"] == {"server": 0, "baseline": 0}
    assert "img/s" in result.stdout and "top1" in result.stdout
