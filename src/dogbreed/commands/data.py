"""`dogbreed data synth|fetch|check`: make, download and validate datasets in the dogImages layout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="make, download and validate datasets (dogImages layout)")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    synth = actions.add_parser(
        "synth",
        help="write a learnable synthetic dataset (deterministic for a seed)",
        description="Write a learnable synthetic dataset in the dogImages layout "
        "(train|valid|test/NNN.Breed_Name/*.jpg) plus manifest.json. Valid and test get about "
        "a quarter of --per-class images per class (at least 2).",
    )
    synth.add_argument("--out", type=Path, required=True, help="dataset root to create")
    synth.add_argument("--classes", type=int, default=10, help="number of classes, 1-133 (default 10)")
    synth.add_argument("--per-class", type=int, default=20, help="training images per class (default 20)")
    synth.add_argument("--size", type=int, default=64, help="nominal image side in px (default 64)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--dataset-id", default=None, help="dataset id for manifest.json (default derived)")
    synth.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    synth.set_defaults(handler=_synth)

    check = actions.add_parser(
        "check",
        help="validate a dataset before paying for compute (exit 1 when it has errors)",
        description="Validate a dataset in the dogImages layout: class count, per-split counts, classes "
        "missing from a split, and empty, non-image, corrupt or truncated files. Exits 0 when it is "
        "usable, 1 when it has errors, 2 when the folder cannot be read.",
    )
    check.add_argument("dataset", type=Path, metavar="DIR", help="dataset root (holds train/ valid/ test/)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--workers", type=int, default=8, help="decode threads (default 8)")
    check.set_defaults(handler=_check)


def _synth(args: argparse.Namespace) -> int:
    from dogbreed.data.synth import SynthError, split_counts, synthesize

    try:
        root = synthesize(
            args.out,
            classes=args.classes,
            per_class=args.per_class,
            size=args.size,
            seed=args.seed,
            dataset_id=args.dataset_id,
            overwrite=args.overwrite,
        )
    except (SynthError, ValueError) as exc:
        print(f"dogbreed data synth: error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(
        f"{split} {count * args.classes}" for split, count in split_counts(args.per_class).items()
    )
    print(f"wrote {args.classes} classes to {root} ({counts} images) and {root / 'manifest.json'}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from dogbreed.data.check import DatasetPathError, check_directory

    try:
        report = check_directory(args.dataset, workers=args.workers)
    except (DatasetPathError, OSError) as exc:
        print(f"dogbreed data check: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
    return 0 if report.ok else 1
