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

    fetch = actions.add_parser(
        "fetch",
        help="download, verify and extract the public dogImages dataset (resumable)",
        description="Download dogImages.zip (133 breeds; 6,680 train / 835 valid / 836 test images) with a "
        "progress bar, resuming a partial download, check its integrity (zip CRCs, classes and "
        "per-split counts, optional SHA-256) and extract it to OUT/dogImages with a manifest.json.",
    )
    fetch.add_argument("--out", type=Path, required=True, help="folder to download and extract into")
    fetch.add_argument("--url", default=None, help="archive URL (default: the public dogImages.zip)")
    fetch.add_argument("--sha256", default=None, help="expected SHA-256 of the archive")
    fetch.add_argument(
        "--expect-counts",
        default=None,
        metavar="TRAIN,VALID,TEST",
        help="expected images per split (default: 6680,835,836 for the public archive, none for --url)",
    )
    fetch.add_argument("--dataset-id", default="dogimages", help="dataset id for manifest.json")
    fetch.add_argument("--retries", type=int, default=3, help="resume attempts after a dropped connection")
    fetch.add_argument("--keep-zip", action="store_true", help="keep the archive after extraction")
    fetch.add_argument("--force", action="store_true", help="extract again even if OUT/dogImages exists")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(handler=_fetch)

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


def _error(action: str, message: str) -> None:
    print(f"dogbreed data {action}: error: {message}", file=sys.stderr)


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
        _error("synth", str(exc))
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
        _error("check", str(exc))
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
    return 0 if report.ok else 1


def _fetch(args: argparse.Namespace) -> int:
    from dataset_check.layout import SPLITS

    from dogbreed.data.fetch import DOGIMAGES_URL, Expectation, FetchError, fetch

    expect: Expectation | None = None
    if args.expect_counts is not None:
        try:
            numbers = [int(part) for part in args.expect_counts.split(",")]
        except ValueError:
            numbers = []
        if len(numbers) != len(SPLITS):
            _error("fetch", "--expect-counts takes TRAIN,VALID,TEST integers")
            return 2
        expect = Expectation(split_counts=dict(zip(SPLITS, numbers, strict=True)))
    try:
        root = fetch(
            args.out,
            url=args.url or DOGIMAGES_URL,
            sha256=args.sha256,
            expect=expect,
            dataset_id=args.dataset_id,
            keep_zip=args.keep_zip,
            force=args.force,
            retries=args.retries,
            progress=not args.no_progress,
        )
    except (FetchError, ValueError) as exc:
        _error("fetch", str(exc))
        return 1
    except OSError as exc:  # disk full, permissions
        _error("fetch", f"{exc.strerror or exc}: {exc.filename or args.out}")
        return 1
    from dataset_check.manifest import Manifest

    manifest = Manifest.read(root)
    counts = ", ".join(f"{split} {count}" for split, count in manifest.splits.items())
    print(f"dataset ready at {root} ({manifest.num_classes} classes; {counts} images)")
    print(f"next: dogbreed data check {root}")
    return 0
