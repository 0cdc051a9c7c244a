"""The endpoint benchmark's report: the machine it ran on, one row per concurrency level and the
printed table."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dogbreed.bench.endpoint_traffic import LevelResult, agreement
from dogbreed.terminal import text_table

COMPUTE_CEILING_NOTE = 23.0  # ResNet50 fp32 images/s this class of CPU reaches (quoted target)


def machine_description() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def level_rows(
    servers: Sequence[LevelResult], baselines: Sequence[LevelResult], reference: Sequence[int]
) -> list[dict[str, Any]]:
    return [
        {
            "concurrency": server.concurrency,
            "server_images_per_s": round(server.images_per_s, 2),
            "baseline_images_per_s": round(baseline.images_per_s, 2),
            "ratio": round(server.images_per_s / baseline.images_per_s, 2),
            "server_p50_ms": round(server.p50_ms, 1),
            "server_p99_ms": round(server.p99_ms, 1),
            "baseline_p50_ms": round(baseline.p50_ms, 1),
            "baseline_p99_ms": round(baseline.p99_ms, 1),
            "top1_agreement": round(agreement(server, reference), 4),
        }
        for server, baseline in zip(servers, baselines, strict=True)
    ]


def format_table(report: dict[str, Any]) -> str:
    headers = ("server", "c", "img/s", "base img/s", "ratio", "srv p50", "srv p99", "base p50", "base p99")
    tables = [("fp32", report["levels"])]
    if "int8_levels" in report:
        tables.append(("int8", report["int8_levels"]))
    cells = [
        (
            name,
            level["concurrency"],
            f"{level['server_images_per_s']:.2f}",
            f"{level['baseline_images_per_s']:.2f}",
            f"{level['ratio']:.2f}x",
            *(
                f"{level[key]:.0f}ms"
                for key in ("server_p50_ms", "server_p99_ms", "baseline_p50_ms", "baseline_p99_ms")
            ),
            f"{level['top1_agreement']:.2%}",
        )
        for name, levels in tables
        for level in levels
    ]
    rows = text_table((*headers, "top1 agr"), cells, right=range(1, 10)).splitlines()
    ceiling = report["model"]["compute_ceiling"]
    for name, levels in tables:
        best = max(level["server_images_per_s"] for level in levels)
        own = ceiling.get(f"onnx_{name}_images_per_s", ceiling["onnx_fp32_images_per_s"])
        c1 = levels[0]
        rows.append(
            f"{name}: best {best:.1f} img/s end to end = {best / own:.0%} of its model-only ceiling "
            f"({own:.1f} img/s), {best / COMPUTE_CEILING_NOTE:.0%} of the quoted "
            f"~{COMPUTE_CEILING_NOTE:.0f} img/s fp32 ceiling; "
            f"c=1 p50 server/baseline {c1['server_p50_ms'] / c1['baseline_p50_ms']:.2f}"
        )
    return "\n".join(rows)
