"""`dogbreed bench endpoint|lambda|...`: benchmarks that print side-by-side ratios.

Each benchmark lives in its own module under `dogbreed.bench` and adds its sub-command through
`register(bench_subparsers)`.
"""

from __future__ import annotations

import importlib
from typing import Any

# One line per benchmark module; keep alphabetical.
BENCH_MODULES: tuple[str, ...] = (
    "dogbreed.bench.batch_bench",
    "dogbreed.bench.endpoint",
    "dogbreed.bench.lambda_bench",
    "dogbreed.bench.load",
)


def register(subparsers: Any) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks that print side-by-side ratios")
    actions = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    for module_name in BENCH_MODULES:
        importlib.import_module(module_name).register(actions)
