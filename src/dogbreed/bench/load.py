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
import base64
import json
import math
import os
import platform
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dogbreed.bench.tiny_model import TINY_CLASSES, solid_color_jpeg
from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.state import CloudState
from dogbreed.local.lambda_runtime.invocation_record import event_from_dead_letter

DEFAULT_REQUESTS = 2000
DEFAULT_CONCURRENCY = 32
DEFAULT_DROPS = 500
DEFAULT_SETTLE_SECONDS = 900.0
DROP_THREADS = 4
REQUEST_TIMEOUT_SECONDS = 120.0
# The documented "busy" answer: 503 with Retry-After (docs/api.md).
UNAVAILABLE = 503
API_RESULTS_PREFIX = "results/api/"
BODY_KINDS = ("binary", "base64")


# --- what one request and the stores tell ------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    kind: str  # "binary" | "base64"
    status: int  # 0: no HTTP answer (connection error, timeout)
    latency_s: float
    retry_after: str | None = None
    prediction_id: str | None = None
    error: str | None = None  # the error code (or transport error) of a non-2xx answer

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def documented(self) -> bool:
        """2xx, or 503 with Retry-After: the only answers the API may give under load."""
        return self.ok or (self.status == UNAVAILABLE and bool(self.retry_after))


@dataclass
class StoreSnapshot:
    """What the stores hold for one run."""

    api_result_ids: set[str] = field(default_factory=set)  # ids with results/api/<id>.json
    api_item_ids: set[str] = field(default_factory=set)  # ids with a Predictions item
    drop_result_keys: Counter[str] = field(default_factory=Counter)  # incoming key -> results objects
    drop_items: Counter[str] = field(default_factory=Counter)  # incoming key -> Predictions items
    rejected_keys: set[str] = field(default_factory=set)  # incoming keys with a rejected/ record
    dead_lettered: Counter[str] = field(default_factory=Counter)  # incoming key -> DLQ messages

    def accounted(self, dropped: Iterable[str]) -> int:
        """Dropped keys whose processing has ended: stored (object and item), rejected or parked."""
        return sum(
            1
            for key in dropped
            if (self.drop_result_keys[key] and self.drop_items[key])
            or key in self.rejected_keys
            or self.dead_lettered[key]
        )


@dataclass(frozen=True)
class PathRow:
    path: str
    sent: int
    ok: int
    unavailable: int | None  # 503 with Retry-After; None where the path has no synchronous answer
    s3_results: int
    dynamodb_items: int
    lost: int
    duplicated: int


@dataclass
class Failure:
    """Requests that got an undocumented answer, grouped by status and error."""

    status: int
    error: str
    count: int
    kinds: list[str]


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least q% of the values at or below it)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def status_histogram(outcomes: Iterable[RequestOutcome]) -> dict[int, int]:
    return dict(sorted(Counter(outcome.status for outcome in outcomes).items()))


def failures(outcomes: Iterable[RequestOutcome]) -> list[Failure]:
    groups: dict[tuple[int, str], Failure] = {}
    for outcome in outcomes:
        if outcome.documented:
            continue
        error = outcome.error or ("503 without Retry-After" if outcome.status == UNAVAILABLE else "")
        failure = groups.setdefault((outcome.status, error), Failure(outcome.status, error, 0, []))
        failure.count += 1
        if outcome.kind not in failure.kinds:
            failure.kinds.append(outcome.kind)
    return sorted(groups.values(), key=lambda failure: -failure.count)


def reconcile(outcomes: list[RequestOutcome], dropped: list[str], stores: StoreSnapshot) -> list[PathRow]:
    """One row per path. Lost: a 2xx or a dropped image without its S3 result and its item.
    Duplicated: more records than answers (an id answered twice, a key stored twice)."""
    ok_ids = Counter(outcome.prediction_id for outcome in outcomes if outcome.ok)
    ids = set(ok_ids)
    api_lost = sum(
        1
        for prediction_id in ids
        if prediction_id is None
        or prediction_id not in stores.api_result_ids
        or prediction_id not in stores.api_item_ids
    )
    api = PathRow(
        path="API",
        sent=len(outcomes),
        ok=sum(ok_ids.values()),
        unavailable=sum(1 for outcome in outcomes if outcome.status == UNAVAILABLE and outcome.documented),
        s3_results=len(ids & stores.api_result_ids),
        dynamodb_items=len(ids & stores.api_item_ids),
        lost=api_lost,
        duplicated=sum(count - 1 for count in ok_ids.values()),
    )
    drop_set = set(dropped)
    stored = [key for key in drop_set if stores.drop_result_keys[key] and stores.drop_items[key]]
    strays = sum(
        count for key, count in (stores.drop_result_keys + stores.drop_items).items() if key not in drop_set
    )
    drops = PathRow(
        path="S3 drop",
        sent=len(dropped),
        ok=len(stored),
        unavailable=None,
        s3_results=sum(stores.drop_result_keys.values()),
        dynamodb_items=sum(stores.drop_items.values()),
        lost=len(drop_set) - len(stored),
        duplicated=strays
        + sum(
            max(0, stores.drop_result_keys[key] - 1) + max(0, stores.drop_items[key] - 1) for key in drop_set
        ),
    )
    return [api, drops]


def _extra(count: int) -> int:
    """Records beyond the one expected."""
    return max(0, count - 1)


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
        f"  {'path':<9}{'sent':>7}{'ok':>7}{'503':>7}{'S3 results':>12}{'DynamoDB items':>16}"
        f"{'lost':>7}{'duplicated':>12}",
    ]
    for row in report.rows:
        unavailable = "-" if row.unavailable is None else str(row.unavailable)
        lines.append(
            f"  {row.path:<9}{row.sent:>7}{row.ok:>7}{unavailable:>7}{row.s3_results:>12}"
            f"{row.dynamodb_items:>16}{row.lost:>7}{row.duplicated:>12}"
        )
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


# --- the load ----------------------------------------------------------------------------------


def request_images(count: int = 24) -> list[bytes]:
    """Good request images of every tiny class (a few seeds, so bodies differ)."""
    return [solid_color_jpeg(index % len(TINY_CLASSES), seed=index) for index in range(count)]


async def _post(client: httpx.AsyncClient, url: str, kind: str, image: bytes) -> RequestOutcome:
    if kind == "binary":
        content, content_type = image, "image/jpeg"
    else:
        content = json.dumps({"image": base64.b64encode(image).decode("ascii")}).encode()
        content_type = "application/json"
    started = time.perf_counter()
    try:
        response = await client.post(url, content=content, headers={"Content-Type": content_type})
    except httpx.HTTPError as transport_error:
        return RequestOutcome(kind, 0, time.perf_counter() - started, error=type(transport_error).__name__)
    latency = time.perf_counter() - started
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    prediction_id = body.get("prediction_id") if isinstance(body, dict) else None
    error = None
    if not 200 <= response.status_code < 300:
        error = _error_code(body) or response.text[:80]
    return RequestOutcome(
        kind,
        response.status_code,
        latency,
        retry_after=response.headers.get("retry-after"),
        prediction_id=prediction_id,
        error=error,
    )


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
        if body.get("message"):
            return str(body["message"])
    return None


async def send_api_load(api_url: str, requests: int, concurrency: int) -> list[RequestOutcome]:
    """`requests` POSTs with at most `concurrency` in flight, binary and base64 JSON alternating."""
    images = request_images()
    url = f"{api_url}/predictions"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    outcomes: list[RequestOutcome] = []
    next_index = iter(range(requests))
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as client:

        async def worker() -> None:
            for index in next_index:
                kind = BODY_KINDS[index % len(BODY_KINDS)]
                outcomes.append(await _post(client, url, kind, images[index % len(images)]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def drop_images(s3: Any, bucket: str, prefix: str, count: int) -> list[str]:
    """Put `count` good images under `prefix` (a few threads, like several uploaders); their keys."""
    images = request_images()
    keys = [f"{prefix}{index:05d}.jpg" for index in range(count)]

    def put(index: int) -> None:
        s3.put_object(
            Bucket=bucket, Key=keys[index], Body=images[index % len(images)], ContentType="image/jpeg"
        )

    with ThreadPoolExecutor(DROP_THREADS, thread_name_prefix="drop") as pool:
        list(pool.map(put, range(count)))
    return keys


# --- counting the stores -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stores:
    """The run's view of the stack: clients and names from the stack outputs."""

    s3: Any
    dynamodb: Any
    sqs: Any
    bucket: str
    table: str
    dead_letter_queue_url: str

    @classmethod
    def for_state(cls, state: CloudState) -> Stores:
        session = cloud_state.local_session()
        outputs = state.outputs
        return cls(
            s3=session.client("s3", endpoint_url=state.aws_url),
            dynamodb=session.client("dynamodb", endpoint_url=state.aws_url),
            sqs=session.client("sqs", endpoint_url=state.aws_url),
            bucket=outputs["InferenceBucketName"],
            table=outputs["PredictionsTableName"],
            dead_letter_queue_url=outputs["PredictS3DeadLetterQueueUrl"],
        )

    def keys(self, prefix: str) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def items(self) -> Iterator[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table, ProjectionExpression="prediction_id, input_ref, result_key"
        ):
            yield from page.get("Items", [])

    def dead_letter_keys(self) -> list[str]:
        """Object keys of the events parked in the DLQ (the S3 function's OnFailure destination: each
        message is Lambda's invocation record, the event under `requestPayload`), read without
        consuming them (every message received is made visible again at once)."""
        keys: list[str] = []
        handles: list[str] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                keys.append(dead_lettered_key(message["Body"]))
        for start in range(0, len(handles), 10):
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.dead_letter_queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, handle in enumerate(handles[start : start + 10])
                ],
            )
        return keys

    def snapshot(self, run_prefix: str, prediction_ids: set[str]) -> StoreSnapshot:
        """Count what the stores hold for the run: `run_prefix` is `load-<run id>/`."""
        snapshot = StoreSnapshot()
        incoming = f"incoming/{run_prefix}"
        for key in self.keys(API_RESULTS_PREFIX) if prediction_ids else ():
            prediction_id = key[len(API_RESULTS_PREFIX) :].removesuffix(".json")
            if prediction_id in prediction_ids:
                snapshot.api_result_ids.add(prediction_id)
        for key in self.keys(f"results/{run_prefix}"):
            snapshot.drop_result_keys[incoming_key_of(key, "results/")] += 1
        for key in self.keys(f"rejected/{run_prefix}"):
            snapshot.rejected_keys.add(incoming_key_of(key, "rejected/"))
        source = f"s3://{self.bucket}/"
        for item in self.items():
            prediction_id = item["prediction_id"]["S"]
            input_ref = item.get("input_ref", {}).get("S", "")
            if prediction_id in prediction_ids:
                snapshot.api_item_ids.add(prediction_id)
            elif input_ref.startswith(source + incoming):
                snapshot.drop_items[input_ref[len(source) :]] += 1
        for key in self.dead_letter_keys():
            if key.startswith(incoming):
                snapshot.dead_lettered[key] += 1
        return snapshot


def dead_lettered_key(body: str) -> str:
    """The object key of a dead-letter message: EventBridge parks the bare event, the function's
    OnFailure destination an invocation record with the event under `requestPayload`."""
    try:
        event = event_from_dead_letter(json.loads(body))
        return str(event["detail"]["object"]["key"])
    except (ValueError, KeyError, TypeError):
        return ""


def incoming_key_of(stored_key: str, prefix: str) -> str:
    """`results/a/b.jpg.json` (or `rejected/...`) -> `incoming/a/b.jpg`."""
    return "incoming/" + stored_key[len(prefix) :].removesuffix(".json")


def wait_accounted(
    stores: Stores, run_prefix: str, dropped: list[str], *, timeout: float, poll_seconds: float = 1.0
) -> bool:
    """Wait until every dropped image has a result and its item, a rejection or a DLQ message."""
    deadline = time.monotonic() + timeout
    while True:
        if stores.snapshot(run_prefix, set()).accounted(dropped) == len(dropped):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_seconds)


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


# --- the cloud and its endpoint --------------------------------------------------------------------


@contextmanager
def target_cloud(state_dir: Path) -> Iterator[CloudState]:
    """The running local cloud, or one started here (on free ports) and stopped afterwards."""
    from dogbreed.local.cloud.lifecycle import running_state, start_cloud, stop_cloud
    from dogbreed.loopback import free_port

    state = running_state(state_dir)
    if state is not None:
        yield state
        return
    print(f"no local cloud in {state_dir}: starting one for this run", flush=True)
    state = start_cloud(state_dir, aws_port=free_port(), api_port=free_port(), overrides=[], quiet=True)
    try:
        yield state
    finally:
        stop_cloud(state_dir)


def ensure_endpoint(state: CloudState, model_dir: Path | None, *, name: str) -> None:
    """Leave an InService endpoint alone; otherwise serve `model_dir` or a freshly trained tiny model."""
    from dogbreed.local.cloud.model_deploy import deploy_model_dir, endpoint_status, wait_in_service

    status = endpoint_status(state)
    if status in ("Creating", "Updating", "SystemUpdating"):
        try:
            wait_in_service(state, timeout=300)
            return
        except (TimeoutError, RuntimeError):
            status = endpoint_status(state)
    if status == "InService":
        return
    with tempfile.TemporaryDirectory(prefix="dogbreed-load-model-") as scratch:
        if model_dir is None:
            from dogbreed.bench.tiny_model import train_tiny_model

            print("the stack endpoint is not InService: training the tiny model to serve", flush=True)
            model_dir = train_tiny_model(Path(scratch) / "model")
        print(f"serving {model_dir} on {state.outputs['EndpointName']}", flush=True)
        deploy_model_dir(state, model_dir, name=name)


# --- the command -----------------------------------------------------------------------------------


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
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
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
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if report.passed else 1
