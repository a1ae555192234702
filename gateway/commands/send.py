"""``loonbrug send``: an intermediary sends wage reports and awaits the receipts.

Each report is signed with the intermediary's key, encrypted to the gateway,
uploaded over SFTP under a temporary name and renamed, and (unless
``--no-wait``) its receipt is awaited, verified and printed. The exit status is
0 only if every report was accepted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli import EXIT_ERROR, EXIT_NO, EXIT_OK
from gateway.errors import UsageError
from gateway.sftp.exchange import Receipt, Sent, send_reports
from gateway.sftp.partner import load_partner

DEFAULT_PARTNER = Path("partner.toml")


def register(subparsers: Any) -> None:
    """Add the ``send`` command."""
    parser = subparsers.add_parser(
        "send",
        help="send wage reports to the gateway (intermediary)",
        description="Sign, encrypt and upload wage reports, then await receipts.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--partner",
        type=Path,
        default=DEFAULT_PARTNER,
        help=f"the partner configuration (default: ./{DEFAULT_PARTNER})",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="do not wait for the receipts"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for all receipts (default 300)",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    partner = load_partner(args.partner)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    sent = send_reports(
        partner, list(args.files), wait=not args.no_wait, timeout=args.timeout
    )
    for item in sent:
        print(describe(item))
    if args.no_wait:
        return EXIT_OK
    receipts = [s.receipt for s in sent]
    if all(r is not None and r.is_accepted for r in receipts):
        return EXIT_OK
    return EXIT_NO if all(r is not None for r in receipts) else EXIT_ERROR


def describe(sent: Sent) -> str:
    """A few lines on one sent report and its receipt."""
    head = f"{sent.source.name}: uploaded as {sent.upload_name}"
    if sent.receipt is None:
        return head
    return "\n".join([head, *_receipt_lines(sent.receipt)])


def _receipt_lines(receipt: Receipt) -> list[str]:
    lines = [f"  receipt: {receipt.outcome} (signed by the gateway)"]
    lines += [
        f"  accepted for {code}: {count} record(s)"
        for code, count in sorted(receipt.accepted.items())
    ]
    for finding in receipt.findings:
        where = f" line {finding.line}" if finding.line else ""
        record = f" record {finding.record_id}" if finding.record_id else ""
        lines.append(
            f"  {finding.severity} {finding.code}{where}{record}: {finding.message}"
        )
    return lines
