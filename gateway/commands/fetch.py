"""``loonbrug fetch``: a municipality fetches its reports from the gateway.

Every file in ``/outbox`` is downloaded, decrypted, checked to be signed by the
gateway, written into DIR with fsync, and only then removed from the outbox.
The exit status is 1 if any file failed its checks (it stays on the server).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli import EXIT_NO, EXIT_OK
from gateway.sftp.exchange import fetch_deliveries
from gateway.sftp.partner import load_partner

DEFAULT_PARTNER = Path("partner.toml")


def register(subparsers: Any) -> None:
    """Add the ``fetch`` command."""
    parser = subparsers.add_parser(
        "fetch",
        help="fetch reports from the gateway (municipality)",
        description="Download, decrypt and verify every outbox file into DIR.",
    )
    parser.add_argument("folder", type=Path, metavar="DIR")
    parser.add_argument(
        "--partner",
        type=Path,
        default=DEFAULT_PARTNER,
        help=f"the partner configuration (default: ./{DEFAULT_PARTNER})",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    partner = load_partner(args.partner)
    fetched = fetch_deliveries(partner, args.folder)
    for item in fetched:
        if item.target is not None:
            print(f"{item.name}: {item.size} bytes written to {item.target}")
        else:
            print(f"{item.name}: left on the server ({item.problem})")
    if not fetched:
        print("nothing to fetch")
    return EXIT_NO if any(item.problem for item in fetched) else EXIT_OK
