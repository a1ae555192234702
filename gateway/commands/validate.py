"""``loonbrug validate``: check wage reports and print every finding.

Exit status 0 when every file is valid, 1 when any file has an error finding,
2 for usage, configuration and I/O errors. With ``-c CONFIG`` the municipalities
the gateway knows are checked; adding ``--intermediary ID`` checks the header's
sender and the municipalities that intermediary may report to, as the daemon
does for its uploads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gateway import config as config_module
from gateway.errors import UsageError, ValidationError
from gateway.validate import (
    SenderContext,
    ValidationContext,
    ValidationResult,
    validate_file,
)

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_ERROR = 2


def register(subparsers: Any) -> None:
    """Add the ``validate`` command."""
    parser = subparsers.add_parser(
        "validate",
        help="validate wage reports",
        description="Validate wage reports against the schema and domain rules.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("-c", "--config", type=Path, metavar="CONFIG")
    parser.add_argument(
        "--intermediary", metavar="ID", help="validate as an upload of this account"
    )
    parser.add_argument(
        "--max-findings", type=int, default=1000, metavar="N", help="(default 1000)"
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    context = _context(args)
    statuses: list[int] = []
    reports: list[dict[str, object]] = []
    for path in args.files:
        try:
            result = validate_file(path, context)
        except ValidationError as exc:
            print(f"loonbrug: {exc}", file=sys.stderr)
            statuses.append(EXIT_ERROR)
            reports.append({"file": str(path), "error": str(exc)})
            continue
        statuses.append(EXIT_VALID if result.valid else EXIT_INVALID)
        reports.append({"file": str(path), **result.to_dict()})
        if not args.json:
            _print_human(path, result)
    if args.json:
        json.dump({"files": reports}, sys.stdout, indent=2, ensure_ascii=False)
        print()
    return max(statuses)


def _print_human(path: Path, result: ValidationResult) -> None:
    for finding in result.findings:
        print(finding.describe(str(path)))
    if result.truncated:
        print(f"{path}: more findings were left out (limit reached)")
    verdict = "valid" if result.valid else "invalid"
    print(f"{path}: {verdict}, {result.record_count} record(s)")


def _context(args: argparse.Namespace) -> ValidationContext:
    if args.max_findings < 1:
        raise UsageError("--max-findings must be at least 1")
    if args.config is None:
        if args.intermediary is not None:
            raise UsageError("--intermediary needs -c CONFIG")
        return ValidationContext(max_findings=args.max_findings)
    config = config_module.load(args.config)
    sender = None
    if args.intermediary is not None:
        intermediary = config.intermediaries.get(args.intermediary)
        if intermediary is None:
            raise UsageError(f"no intermediary {args.intermediary!r} in {args.config}")
        sender = SenderContext.from_intermediary(intermediary)
    return ValidationContext(
        known_municipalities=config.municipality_codes,
        sender=sender,
        max_findings=args.max_findings,
        max_bytes=config.gateway.max_plaintext_bytes,
    )
