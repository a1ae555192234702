"""The ``loonbrug`` command line.

Each command group lives in its own module under :mod:`gateway.commands`, which
adds its parser through ``register(subparsers)`` and sets ``handler`` to a
function taking the parsed arguments and returning the exit status. Exit status
is 0 for success, 1 when the command ran but the answer is "no" (an invalid
report, a rejected upload, a broken audit chain), 2 for usage, configuration and
I/O errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from gateway import __version__
from gateway.errors import LoonbrugError

EXIT_OK = 0
EXIT_NO = 1
EXIT_ERROR = 2

_COMMAND_MODULES = (
    "validate",
    "sample",
    "check_config",
    "keys",
    "run",
    "demo",
    "send",
    "fetch",
    "audit",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The parser for every ``loonbrug`` command."""
    parser = argparse.ArgumentParser(
        prog="loonbrug",
        description="Secure gateway for weekly wage reports.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"gateway.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except LoonbrugError as exc:
        print(f"loonbrug: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
