"""``loonbrug check-config``: every problem of a configuration, with its place."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.checkconfig import Severity, check
from gateway.cli import EXIT_NO, EXIT_OK

_EPILOG = """\
Each problem is printed on one line as "<severity>: <place>: <problem>", the
place naming the setting (for example intermediary[2].signing_keys[1]).

exit status:
  0  no errors (warnings, such as keys expiring within 30 days, may be shown)
  1  at least one error: the daemon would refuse to start or would fail uploads
  2  the file is missing, unreadable or not TOML at all
"""


def register(subparsers: Any) -> None:
    """Add the ``check-config`` command."""
    parser = subparsers.add_parser(
        "check-config",
        help="check a configuration file and the keys it names",
        description=(
            "Check the configuration file, then the keys it names in the\n"
            "gateway's GnuPG home (present, not expired or revoked, able to sign\n"
            "or encrypt as needed), the pseudonym key file and the SSH keys.\n"
            "Nothing is changed."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", "--config", type=Path, required=True, metavar="FILE")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    problems = check(args.config)
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity is Severity.ERROR)
    warnings = len(problems) - errors
    if problems:
        print(f"{args.config}: {errors} error(s), {warnings} warning(s)")
    else:
        print(f"{args.config}: no problems found")
    return EXIT_NO if errors else EXIT_OK
