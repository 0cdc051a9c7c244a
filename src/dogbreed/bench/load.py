"""`dogbreed bench load`: the inference paths under load on the local cloud, reconciled by counting.

API requests (`POST /predictions`, binary JPEG and base64 JSON bodies, alternating) go through the
local HTTP API at a fixed concurrency while, at the same time, images are dropped under a run-unique
prefix `incoming/load-<run id>/` of the inference bucket. Every request must answer 2xx or the
documented 503 with `Retry-After`; anything else is a failure the report names.

Once every dropped image is accounted for (a result, a rejection or a dead-letter message; bounded
wait), the stores are counted: `results/...` objects and Predictions items for the run's API
prediction ids and for its drop prefix (items carry `input_ref` / `result_key`), plus `rejected/`
and the S3 function's dead-letter queue. Every 2xx and every dropped image must have exactly one
stored record: the command exits 1 when anything is lost or duplicated or a status is undocumented.

It targets the running local cloud (`dogbreed local up`), or starts one and stops it afterwards, and
serves `--model-dir` (or a freshly trained tiny model) when the stack's endpoint is not InService.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import time
import uuid
from pathlib import Path
from typing import Any

from dogbreed.bench import add_json_file_argument
from dogbreed.bench.cloud_target import ensure_endpoint, target_cloud
from dogbreed.bench.load_reconcile import RequestOutcome, failures, reconcile, status_histogram
from dogbreed.bench.load_report import LoadReport, format_report
from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.state import CloudState

DEFAULT_REQUESTS = 2000
DEFAULT_CONCURRENCY = 32
DEFAULT_DROPS = 500
DEFAULT_SETTLE_SECONDS = 900.0


def run_load(
    state: CloudState,
    *,
    requests: int = DEFAULT_REQUESTS,
    concurrency: int = DEFAULT_CONCURRENCY,
    drops: int = DEFAULT_DROPS,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    run_id: str | None = None,
) -> LoadReport:
    """The API load and the drops at the same time on `state`'s cloud, then the reconciliation."""
    # Imported here, not when the CLI builds its parser (which imports this module): they load pydantic.
    from dogbreed.bench.load_stores import Stores, wait_accounted
    from dogbreed.bench.load_traffic import drop_images, send_api_load

    run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_prefix = f"load-{run_id}/"
    stores = Stores.for_state(state)

    drops_started = time.monotonic()
    put_seconds = [math.nan]

    def drop_all() -> list[str]:
        keys = drop_images(stores.s3, stores.bucket, f"incoming/{run_prefix}", drops)
        put_seconds[0] = time.monotonic() - drops_started
        return keys

    async def both() -> tuple[list[RequestOutcome], float, list[str]]:
        dropping = asyncio.create_task(asyncio.to_thread(drop_all))
        api_started = time.perf_counter()
        outcomes = await send_api_load(state.api_url, requests, concurrency)
        api_seconds = time.perf_counter() - api_started
        return outcomes, api_seconds, await dropping

    outcomes, api_seconds, dropped = asyncio.run(both())
    settled = wait_accounted(
        stores, run_prefix, dropped, timeout=max(0.0, settle_seconds - (time.monotonic() - drops_started))
    )
    settled_seconds = time.monotonic() - drops_started if settled else None
    ids = {outcome.prediction_id for outcome in outcomes if outcome.ok and outcome.prediction_id}
    snapshot = stores.snapshot(run_prefix, ids)
    return LoadReport(
        run_id=run_id,
        api_url=state.api_url,
        requests=requests,
        concurrency=concurrency,
        drops=drops,
        api_seconds=api_seconds,
        drop_put_seconds=put_seconds[0],
        drops_settled_seconds=settled_seconds,
        latencies_s=[outcome.latency_s for outcome in outcomes],
        statuses=status_histogram(outcomes),
        rows=reconcile(outcomes, dropped, snapshot),
        rejected=len(snapshot.rejected_keys),
        dead_lettered=sum(snapshot.dead_lettered.values()),
        failures=failures(outcomes),
    )


def register(bench_subparsers: Any) -> None:
    parser = bench_subparsers.add_parser(
        "load",
        help="API requests and S3 drops under load on the local cloud, reconciled by counting the stores",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--state-dir", type=Path, default=cloud_state.DEFAULT_STATE_DIR, help="default .local-cloud/"
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="API requests (default 2000)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="in flight (default 32)")
    parser.add_argument("--drops", type=int, default=DEFAULT_DROPS, help="images dropped (default 500)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=DEFAULT_SETTLE_SECONDS,
        help="how long the drops may take to be accounted for, from the first put (default 900)",
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="served when no endpoint is InService")
    add_json_file_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    with target_cloud(args.state_dir) as state:
        ensure_endpoint(state, args.model_dir, name=f"load-{run_id}")
        print(
            f"load: {args.requests} requests at concurrency {args.concurrency}, {args.drops} drops "
            f"({platform.node()}, {os.cpu_count()} CPUs)",
            flush=True,
        )
        report = run_load(
            state,
            requests=args.requests,
            concurrency=args.concurrency,
            drops=args.drops,
            settle_seconds=args.settle_seconds,
            run_id=run_id,
        )
    print(format_report(report))
    if args.json_file is not None:
        args.json_file.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if report.passed else 1
