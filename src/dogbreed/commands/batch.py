"""`dogbreed batch submit PREFIX|MANIFEST` and `dogbreed batch status ID`: bulk inference through
SageMaker Batch Transform (docs/batch.md), on AWS (samconfig.toml's stack) or on the local cloud
(`--local`). `dogbreed.batch` (and the product's `batch_inference` it reads) is imported when a batch
command runs, not when the CLI starts."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dogbreed.commands.stack_arguments import add_stack_target_arguments, stack_clients
from dogbreed.stack_target import StackNotFound
from dogbreed.terminal import text_table

_DONE = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("batch", help="bulk inference through SageMaker Batch Transform")
    commands = group.add_subparsers(dest="batch_command", required=True, metavar="COMMAND")

    submit = commands.add_parser(
        "submit",
        help="classify every image under a prefix (or named by a manifest file) as one batch",
        description=(
            "Writes batches/<id>/manifest.json to the stack's inference bucket, which starts the batch: "
            "a Batch Transform job with the deployed model (or --model), one JSON Lines result or one "
            "rejection per image under batches/<id>/, and batches/<id>/summary.json."
        ),
    )
    submit.add_argument(
        "target", metavar="PREFIX|MANIFEST", help="a key prefix / s3:// prefix, or a manifest .json"
    )
    submit.add_argument("--id", dest="batch_id", help="the batch id (default: batch-<UTC time>-<hex>)")
    submit.add_argument("--top-k", type=int, default=5, help="predictions per image, 1-10 (default 5)")
    submit.add_argument("--model", default="deployed", help='"deployed" (default) or a model version')
    submit.add_argument("--wait", action="store_true", help="follow the batch until it ends")
    add_stack_target_arguments(submit)
    submit.set_defaults(handler=_submit)

    status = commands.add_parser("status", help="a batch's progress, outcome and summary")
    status.add_argument("batch_id", metavar="ID")
    status.add_argument("--watch", action="store_true", help="print progress until the batch ends")
    status.add_argument("--json", action="store_true", help="the status as JSON")
    add_stack_target_arguments(status)
    status.set_defaults(handler=_status)


def _new_batch_id() -> str:
    return f"batch-{datetime.now(UTC):%y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}"


def _follow(clients: Callable[[str], Any], outputs: dict[str, str], batch_id: str, as_json: bool) -> int:
    from dogbreed import batch

    last = ""
    while True:
        status = batch.batch_status(clients, outputs, batch_id)
        line = status.line()
        if line != last and not as_json:
            print(line, flush=True)
            last = line
        if status.execution in _DONE:
            return _print_final(status, as_json)
        time.sleep(2)


def _print_final(status: Any, as_json: bool) -> int:
    if as_json:
        print(json.dumps(status.__dict__, indent=1, default=str))
    elif status.summary:
        summary = status.summary
        print(
            f"model {summary['model_version']}: {summary['results']} results, {summary['rejected']} rejected "
            f"of {summary['inputs']} inputs in {summary['duration_seconds']} s"
        )
        breeds = [(count, breed) for breed, count in list(summary["breeds"].items())[:10]]
        if breeds:
            print(text_table(("IMAGES", "BREED"), breeds, right=(0,), indent=2))
        for item in summary.get("rejections", [])[:10]:
            print(f"  rejected {item['input']}: {item['code']} ({item['message']})")
    return 0 if status.execution == "SUCCEEDED" else 1


def _submit(args: argparse.Namespace) -> int:
    from dogbreed import batch

    try:
        clients, outputs = stack_clients(args)
        bucket = outputs["InferenceBucketName"]
        batch_id = args.batch_id or _new_batch_id()
        document = batch.manifest_for(args.target, bucket, top_k=args.top_k, model=args.model)
        key = batch.submit(clients("s3"), bucket, batch_id, document)
    except (LookupError, StackNotFound, ValueError) as error:
        print(f"dogbreed batch submit: {error}", file=sys.stderr)
        return 2
    print(f"batch {batch_id} submitted: s3://{bucket}/{key}")
    print(f"follow it with: dogbreed batch status {batch_id}{' --local' if args.local else ''}")
    if not args.wait:
        return 0
    return _follow(clients, outputs, batch_id, as_json=False)


def _status(args: argparse.Namespace) -> int:
    from dogbreed import batch

    try:
        clients, outputs = stack_clients(args)
    except (LookupError, StackNotFound) as error:
        print(f"dogbreed batch status: {error}", file=sys.stderr)
        return 2
    if args.watch:
        return _follow(clients, outputs, args.batch_id, args.json)
    status = batch.batch_status(clients, outputs, args.batch_id)
    if status.execution in _DONE:
        if not args.json:
            print(status.line())
        return _print_final(status, args.json)
    print(json.dumps(status.__dict__, indent=1, default=str) if args.json else status.line())
    return 0 if status.execution else 1
