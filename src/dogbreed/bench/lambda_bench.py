"""`dogbreed bench lambda`: what the inference functions add on top of the model endpoint.

Warm overhead: the real handlers (`predict_api`, `predict_s3`) run in a fresh interpreter with the
real boto3 clients pointed (AWS_ENDPOINT_URL) at a loopback server that plays S3, DynamoDB and the
SageMaker endpoint and answers at once. Each invocation's handler time minus its endpoint call
(timed around `classify`) is the overhead: event parsing, validation, the image check, the S3 and
DynamoDB client calls (request building, signing, loopback round trip), logging and EMF metrics.
Real network latency to S3/DynamoDB is not included. Tracing is disabled for the warm runs (no
X-Ray daemon here).

Cold init: importing each handler module in a fresh interpreter, up to ready (settings parsed,
clients and service built), with the Tracer enabled as in Lambda; reported beside the bare
Powertools import (Logger, Metrics, Tracer, the REST resolver) in a fresh interpreter.

Targets (printed, not asserted): warm p50 < 5 ms and p99 < 20 ms; cold init < 400 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from dogbreed.bench import add_json_file_argument
from dogbreed.bench.lambda_cold import cold_init
from dogbreed.bench.lambda_fake_aws import FUNCTION_ENV
from dogbreed.terminal import text_table

TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0
TARGET_COLD_MS = 400.0


def run_benchmark(iterations: int, warmup: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dogbreed-lambda-bench-") as tmp:
        out = Path(tmp) / "warm.json"
        env = {**os.environ, **FUNCTION_ENV, "POWERTOOLS_TRACE_DISABLED": "true"}
        code = (
            "from pathlib import Path\nfrom dogbreed.bench.lambda_warm import _warm_worker\n"
            f"_warm_worker({iterations}, {warmup}, Path({str(out)!r}))\n"
        )
        # The handlers' JSON logs and EMF metrics go to stdout, as in Lambda; here that is /dev/null.
        subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, timeout=1800, stdout=subprocess.DEVNULL
        )
        warm = json.loads(out.read_text())
    return {
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "warm": warm,
        "cold_ms": cold_init(repeats),
    }


def format_report(report: dict[str, Any]) -> str:
    warm = report["warm"]
    lines = [
        f"dogbreed bench lambda  (python {report['python']} {report['machine']}; handlers in-process; "
        f"S3/DynamoDB/endpoint on a loopback stand-in; image {warm['image_bytes'] // 1024} KiB JPEG; "
        f"{report['cpus']} CPUs, load average {report['load_average']:.1f} at the end)",
        "",
        "warm handler overhead, endpoint call excluded",
        text_table(
            ("scenario", "n", "p50 ms", "p99 ms", "p50/target", "p99/target"),
            [
                (
                    name,
                    figures["n"],
                    f"{figures['p50_ms']:.2f}",
                    f"{figures['p99_ms']:.2f}",
                    f"{figures['p50_ms'] / TARGET_P50_MS:.2f}",
                    f"{figures['p99_ms'] / TARGET_P99_MS:.2f}",
                )
                for name, figures in warm["scenarios"].items()
            ],
            right=range(1, 6),
            indent=2,
        ),
    ]
    lines.append(
        f"  targets: p50 < {TARGET_P50_MS:.0f} ms, p99 < {TARGET_P99_MS:.0f} ms (ratio < 1 meets them)"
    )
    cold = report["cold_ms"]
    bare = cold["bare Powertools import"]
    lines += ["", "cold init, fresh interpreter, median (Tracer enabled)"]
    rows = [(label, f"{value:.1f}", f"x{value / bare:.2f}") for label, value in cold.items()]
    lines.append(text_table(("import", "ms", "of bare Powertools"), rows, right=(1, 2), indent=2))
    lines.append(f"  target: handler import < {TARGET_COLD_MS:.0f} ms")
    return "\n".join(lines)


def register(bench_subparsers: Any) -> None:
    parser = bench_subparsers.add_parser(
        "lambda",
        help="inference Lambda handlers: warm overhead without the endpoint, and cold init",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--iterations", type=int, default=300, help="measured invocations per scenario")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured invocations per scenario first")
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per cold-init figure")
    parser.add_argument("--quick", action="store_true", help="60 invocations, 3 interpreters")
    add_json_file_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    iterations, repeats = (60, 3) if args.quick else (args.iterations, args.repeats)
    report = run_benchmark(iterations, min(args.warmup, iterations), repeats)
    print(format_report(report))
    if args.json_file is not None:
        args.json_file.write_text(json.dumps(report, indent=2) + "\n")
    return 0
