"""``loonbrug sample``: write a realistic, reproducible wage report.

Without a configuration the report comes from a fictional intermediary and
covers the demo's three municipalities. With ``-c CONFIG --intermediary ID`` it
uses that intermediary's name, KvK number and loonheffingennummer, and only the
municipalities it is authorised for, so the report passes the gateway.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, BinaryIO

from gateway import config as config_module
from gateway import sample
from gateway.errors import UsageError


def register(subparsers: Any) -> None:
    """Add the ``sample`` command."""
    parser = subparsers.add_parser(
        "sample",
        help="write a sample wage report",
        description="Write a realistic, reproducible sample wage report.",
    )
    parser.add_argument("--records", type=int, default=50, metavar="N")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument(
        "--period",
        choices=("week", "four-weeks", "month"),
        default="week",
        help="kind of pay period (default: week)",
    )
    parser.add_argument(
        "--inject", metavar="RULE", help="break exactly one rule (its finding code)"
    )
    parser.add_argument(
        "--list-injections",
        action="store_true",
        help="list the rules --inject can break, and exit",
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE")
    parser.add_argument("-c", "--config", type=Path, metavar="CONFIG")
    parser.add_argument("--intermediary", metavar="ID")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.list_injections:
        for injection in sample.INJECTIONS.values():
            print(f"{injection.code:32} {injection.description}")
        return 0
    if args.records < 1:
        raise UsageError("--records must be at least 1")
    options = _partner_options(args)
    try:
        if args.output is None:
            _write(sys.stdout.buffer, args, options)
        else:
            with args.output.open("wb") as out:
                _write(out, args, options)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot be written ({exc.strerror})") from exc
    return 0


def _write(out: BinaryIO, args: argparse.Namespace, options: dict[str, Any]) -> None:
    sample.write_report(
        out,
        records=args.records,
        seed=args.seed,
        inject=args.inject,
        period_kind=args.period,
        **options,
    )
    out.flush()


def _partner_options(args: argparse.Namespace) -> dict[str, Any]:
    """Sender and municipalities from the configuration, when one is given."""
    if args.config is None:
        if args.intermediary is not None:
            raise UsageError("--intermediary needs -c CONFIG")
        return {}
    config = config_module.load(args.config)
    if args.intermediary is None:
        raise UsageError("-c CONFIG needs --intermediary ID")
    intermediary = config.intermediaries.get(args.intermediary)
    if intermediary is None:
        raise UsageError(f"no intermediary {args.intermediary!r} in {args.config}")
    authorised = sorted(intermediary.municipalities)
    outside = sorted(config.municipality_codes - intermediary.municipalities)
    options: dict[str, Any] = {
        "sender": sample.SampleSender.from_intermediary(intermediary),
        "municipalities": authorised or None,
    }
    if outside:
        options["outside_municipality"] = outside[0]
    return options
