"""Benchmarks behind `dogbreed bench`: each module exposes `register(bench_subparsers)`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_json_file_argument(parser: argparse.ArgumentParser) -> None:
    """`--json-file FILE`: the figures as JSON too (`--json` is always a stdout format in dogbreed)."""
    parser.add_argument(
        "--json-file", type=Path, default=None, help="also write the figures as JSON to this file"
    )
