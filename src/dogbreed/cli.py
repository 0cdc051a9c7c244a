"""The `dogbreed` command line. Each command group lives in `dogbreed.commands.<name>` and adds its
own sub-parser through `register(subparsers)`; the parsed namespace carries the function to run."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# One line per command group; keep alphabetical.
COMMAND_MODULES: tuple[str, ...] = (
    "dogbreed.commands.approval",
    "dogbreed.commands.batch",
    "dogbreed.commands.bench",
    "dogbreed.commands.cost",
    "dogbreed.commands.data",
    "dogbreed.commands.demo",
    "dogbreed.commands.deploy",
    "dogbreed.commands.local",
    "dogbreed.commands.predict",
    "dogbreed.commands.report",
    "dogbreed.commands.serve",
    "dogbreed.commands.teardown",
    "dogbreed.commands.train",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dogbreed", description="Dog-breed classifier: data tools, training, serving, local cloud."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
