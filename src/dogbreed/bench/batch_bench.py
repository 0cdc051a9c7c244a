"""`dogbreed bench batch`: the same N images classified through the S3 drop and through a batch, on the
local cloud, side by side, with what each path costs per million images on AWS.

- S3 drop: the images are put under `incoming/bench-<run>/` (4 uploaders); the clock runs from the
  first put until every image has its `results/` (or `rejected/`) object.
- Batch: the same images are put under `bench/<run>/`, then `dogbreed batch submit`'s manifest for
  that prefix; the clock runs from the first put until the batch's execution has ended, and every
  image must have its `batches/<id>/results/` object.

Both paths use the stack's one endpoint model (the batch's transform job starts its own model server,
`BatchInstanceCount` of them). The AWS cost of the batch path takes the measured images per second
of one local transform instance as the rate of one AWS instance (`--aws-images-per-second` replaces
it with your own measurement); prices come from `dogbreed cost`'s table (src/dogbreed/cost/prices.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dogbreed.bench import add_json_file_argument
from dogbreed.bench.cloud_target import ensure_endpoint, target_cloud
from dogbreed.cost.batch import PathCost, batch_path_cost, drop_path_cost
from dogbreed.cost.estimate import environment_parameters, load_prices
from dogbreed.local.cloud import state as cloud_state
from dogbreed.local.cloud.state import CloudState
from dogbreed.terminal import text_table

DEFAULT_IMAGES = 200
DEFAULT_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class PathRun:
    path: str
    images: int
    seconds: float
    classified: int
    instances: int = 1  # model-server processes that classified them

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class BatchBenchReport:
    drop: PathRun
    batch: PathRun
    drop_cost: PathCost
    batch_cost: PathCost

    def to_dict(self) -> dict[str, Any]:
        return {
            "drop": {**asdict(self.drop), "images_per_second": self.drop.images_per_second},
            "batch": {**asdict(self.batch), "images_per_second": self.batch.images_per_second},
            "usd_per_million_on_aws": {
                "drop": self.drop_cost.usd_per_million,
                "batch": self.batch_cost.usd_per_million,
                "drop_detail": self.drop_cost.detail,
                "batch_detail": self.batch_cost.detail,
            },
        }


def _count(s3: Any, bucket: str, prefix: str) -> int:
    return sum(
        page.get("KeyCount", 0)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(0.5)


def run_drop(state: CloudState, images: int, run_id: str, timeout: float) -> PathRun:
    from dogbreed.bench.load_traffic import drop_images  # here, not when the CLI builds its parser

    s3, bucket = state.client("s3"), state.outputs["InferenceBucketName"]
    relative = f"bench-{run_id}/"
    started = time.monotonic()
    drop_images(s3, bucket, f"incoming/{relative}", images)

    def settled() -> bool:
        return (
            _count(s3, bucket, f"results/{relative}") + _count(s3, bucket, f"rejected/{relative}") >= images
        )

    _wait(settled, timeout, f"the {images} dropped images were not all classified")
    return PathRun("S3 drop", images, time.monotonic() - started, _count(s3, bucket, f"results/{relative}"))


def run_batch(state: CloudState, images: int, run_id: str, timeout: float) -> PathRun:
    from dogbreed.batch import submit, wait_for_execution
    from dogbreed.bench.load_traffic import drop_images  # here, not when the CLI builds its parser

    s3, bucket = state.client("s3"), state.outputs["InferenceBucketName"]
    batch_id = f"bench-{run_id}"
    started = time.monotonic()
    drop_images(s3, bucket, f"bench/{run_id}/", images)
    submit(s3, bucket, batch_id, {"prefix": f"bench/{run_id}/", "top_k": 5})
    execution = wait_for_execution(
        state.client("stepfunctions"), state.outputs["BatchTransformPipelineArn"], batch_id, timeout=timeout
    )
    seconds = time.monotonic() - started
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(f"batch {batch_id} {execution['status']}: {execution.get('cause')}")
    job = json.loads(execution.get("output") or "{}").get("transform_job") or {}
    classified = _count(s3, bucket, f"batches/{batch_id}/results/")
    return PathRun("Batch Transform", images, seconds, classified, int(job.get("instance_count") or 1))


def run_bench(
    state: CloudState, images: int, run_id: str, timeout: float, aws_rate: float | None
) -> BatchBenchReport:
    drop = run_drop(state, images, run_id, timeout)
    batch = run_batch(state, images, run_id, timeout)
    parameters = environment_parameters("dev")
    prices = load_prices()
    rate = aws_rate or batch.images_per_second / batch.instances
    return BatchBenchReport(
        drop=drop,
        batch=batch,
        drop_cost=drop_path_cost(parameters, prices),
        batch_cost=batch_path_cost(
            prices,
            instance_type=parameters["BatchInstanceType"],
            instance_count=int(parameters["BatchInstanceCount"]),
            images_per_second_per_instance=rate,
        ),
    )


def format_report(report: BatchBenchReport) -> str:
    rows = []
    for run, cost in ((report.drop, report.drop_cost), (report.batch, report.batch_cost)):
        ratio = (
            run.images_per_second / report.drop.images_per_second if report.drop.images_per_second else 0.0
        )
        rows.append(
            (
                run.path,
                run.images,
                run.classified,
                f"{run.seconds:.1f}",
                f"{run.images_per_second:.1f}",
                f"{ratio:.2f}x",
                f"{cost.usd_per_million:.2f}",
            )
        )
    headers = ("path", "images", "classified", "seconds", "images/s", "vs drop", "$/1M images on AWS")
    lines = [text_table(headers, rows, right=range(1, 7))]
    ratio = report.drop_cost.usd_per_million / report.batch_cost.usd_per_million
    lines += [
        "",
        f"S3 drop on AWS:         {report.drop_cost.detail}",
        f"Batch Transform on AWS: {report.batch_cost.detail}",
        f"per million images the batch path costs {1 / ratio:.2f}x the drop path ({ratio:.1f}x cheaper)",
    ]
    return "\n".join(lines)


def register(bench_subparsers: Any) -> None:
    parser = bench_subparsers.add_parser(
        "batch",
        help="the same images through the S3 drop and through Batch Transform, with the AWS cost of each",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--state-dir", type=Path, default=cloud_state.DEFAULT_STATE_DIR, help="default .local-cloud/"
    )
    parser.add_argument(
        "--images", type=int, default=DEFAULT_IMAGES, help=f"images per path (default {DEFAULT_IMAGES})"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="per path, seconds")
    parser.add_argument("--model-dir", type=Path, default=None, help="served when no endpoint is InService")
    parser.add_argument(
        "--aws-images-per-second",
        type=float,
        default=None,
        help="images per second of one AWS transform instance (default: the measured local rate)",
    )
    add_json_file_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    with target_cloud(args.state_dir) as state:
        ensure_endpoint(state, args.model_dir, name=f"bench-batch-{run_id}")
        print(
            f"bench batch: {args.images} images per path ({platform.node()}, {os.cpu_count()} CPUs)",
            flush=True,
        )
        report = run_bench(state, args.images, run_id, args.timeout, args.aws_images_per_second)
    print(format_report(report))
    if args.json_file is not None:
        args.json_file.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    complete = report.drop.classified == report.drop.images and report.batch.classified == report.batch.images
    return 0 if complete else 1
