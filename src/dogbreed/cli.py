"""The `dogbreed` command line. Each command group lives in `dogbreed.commands.<name>` and adds its
own sub-parser through `register(subparsers)`; the parsed namespace carries the function to run.

An expected failure (an AWS error, no credentials, a connection refused, a missing file) ends as the
AWS CLI ends one: one line on stderr and exit status 1 (`--debug`: the traceback too); Ctrl-C exits
130. Usage errors exit 2 (argparse)."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Sequence
from typing import Any

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
DEBUG_HELP = "show the traceback of a failure"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dogbreed", description="Dog-breed classifier: data tools, training, serving, local cloud."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    _add_to_every_command(parser, "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def _add_to_every_command(parser: argparse.ArgumentParser, *flags: str, **options: Any) -> None:
    """A global option every (sub)command accepts too, as the AWS CLI's are: `dogbreed batch status X
    --debug` as well as `dogbreed --debug batch ...` (the SUPPRESS default keeps the global value)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):  # aliases share one parser
                command.add_argument(*flags, **options)
                _add_to_every_command(command, *flags, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"dogbreed {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug or not _expected(error):
            raise
        print(f"dogbreed {args.command}: error: {error}", file=sys.stderr)
        return 1


def _version() -> str:
    try:
        return importlib.metadata.version("dogbreed")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _expected(error: Exception) -> bool:
    """A failure of the world, not of dogbreed: AWS's answer, credentials, the network, a file."""
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(error, BotoCoreError | ClientError | OSError)


if __name__ == "__main__":
    sys.exit(main())
