"""The load benchmark's report: latency percentiles, the figures as JSON and the printed table."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from dogbreed.bench.load_reconcile import Failure, PathRow
from dogbreed.terminal import text_table


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least q% of the values at or below it)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class LoadReport:
    run_id: str
    api_url: str
    requests: int
    concurrency: int
    drops: int
    api_seconds: float
    drop_put_seconds: float
    drops_settled_seconds: float | None  # from the first drop until all were accounted for
    latencies_s: list[float]
    statuses: dict[int, int]
    rows: list[PathRow]
    rejected: int
    dead_lettered: int
    failures: list[Failure]
    cpus: int | None = field(default_factory=os.cpu_count)
    load_average: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def throughput(self) -> float:
        return self.requests / self.api_seconds if self.api_seconds > 0 else math.nan

    @property
    def lost(self) -> int:
        return sum(row.lost for row in self.rows)

    @property
    def duplicated(self) -> int:
        return sum(row.duplicated for row in self.rows)

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and not self.failures

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document.pop("latencies_s")
        document |= {
            "throughput_rps": self.throughput,
            "p50_s": percentile(self.latencies_s, 50),
            "p99_s": percentile(self.latencies_s, 99),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "passed": self.passed,
        }
        return document


def format_report(report: LoadReport) -> str:
    p50, p99 = percentile(report.latencies_s, 50), percentile(report.latencies_s, 99)
    statuses = ", ".join(f"{status or 'no answer'}: {count}" for status, count in report.statuses.items())
    settled = (
        f"all accounted for {report.drops_settled_seconds:.1f} s after the first put"
        if report.drops_settled_seconds is not None
        else "NOT all accounted for within the wait"
    )
    lines = [
        f"dogbreed bench load  (run {report.run_id}; API {report.api_url}; "
        f"{report.cpus} CPUs, load average {report.load_average:.1f} at the end)",
        "",
        f"API       {report.requests} POST /predictions (binary and base64 JSON) at concurrency "
        f"{report.concurrency} in {report.api_seconds:.1f} s: {report.throughput:.1f} req/s",
        f"latency   p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {max(report.latencies_s, default=math.nan) * 1000:.0f} ms",
        f"statuses  {statuses or '-'}",
        f"drops     {report.drops} images under incoming/load-{report.run_id}/ put in "
        f"{report.drop_put_seconds:.1f} s; {settled}",
        "",
        "reconciliation (records counted in the stores)",
        text_table(
            ("path", "sent", "ok", "503", "S3 results", "DynamoDB items", "lost", "duplicated"),
            [
                (
                    row.path,
                    row.sent,
                    row.ok,
                    "-" if row.unavailable is None else row.unavailable,
                    row.s3_results,
                    row.dynamodb_items,
                    row.lost,
                    row.duplicated,
                )
                for row in report.rows
            ],
            right=range(1, 8),
            indent=2,
        ),
    ]
    lines.append(f"  rejected/ records: {report.rejected}; S3 function DLQ messages: {report.dead_lettered}")
    lines.append("")
    if report.failures:
        lines.append("undocumented answers:")
        lines += [
            f"  {failure.count} x status {failure.status or 'no answer'} {failure.error} "
            f"({', '.join(failure.kinds)})"
            for failure in report.failures
        ]
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(
        f"{verdict}: {report.lost} lost, {report.duplicated} duplicated, "
        f"{sum(failure.count for failure in report.failures)} undocumented answers"
    )
    return "\n".join(lines)
