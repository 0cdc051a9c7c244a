"""`dogbreed local demo` (placeholder until the whole-pipeline demo lands)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    demo = commands.add_parser("demo", help="the whole pipeline on the local cloud")
    common(demo)
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    raise SystemExit("dogbreed local demo: not available yet")
