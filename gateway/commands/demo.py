"""``loonbrug demo``: a sandbox to try the gateway in, and a guided run in it.

``loonbrug demo init DIR [--port N]`` creates the sandbox (see
:mod:`gateway.demo`); ``loonbrug demo [--dir DIR] [--once]`` runs the gateway in
it and plays both partners' parts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli import EXIT_OK
from gateway.demo import create_sandbox
from gateway.errors import UsageError

DEFAULT_DIR = Path("loonbrug-demo")


def register(subparsers: Any) -> None:
    """Add the ``demo`` command and its ``init`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="create a sandbox, or run the gateway in one",
        description=(
            "Without a subcommand, run the gateway in the sandbox folder and "
            "send a report through it as a partner would."
        ),
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"the sandbox folder (default: {DEFAULT_DIR})",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="send one report, wait for its receipt and deliveries, then stop",
    )
    parser.set_defaults(handler=_run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    init = actions.add_parser(
        "init",
        help="create a sandbox with a configuration and real keys",
        description=(
            "Create DIR/loonbrug.toml, the gateway's keys, two intermediaries and "
            "three municipalities, each with its own OpenPGP and SSH keys in "
            "DIR/partners/<account>/. Keys have no passphrase: demo use only."
        ),
    )
    init.add_argument("folder", type=Path, metavar="DIR")
    init.add_argument(
        "--port", type=int, default=2222, help="SFTP port to configure (default 2222)"
    )
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    sandbox = create_sandbox(args.folder, port=args.port)
    print(f"sandbox created in {sandbox.folder}")
    print(f"  configuration:   {sandbox.config_path}")
    print(f"  intermediaries:  {', '.join(sandbox.intermediaries)}")
    print(f"  municipalities:  {', '.join(sandbox.municipalities)}")
    print(f"run it with: loonbrug run -c {sandbox.config_path}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    # Imported here: the guided run pulls in the daemon and the SFTP client,
    # which "demo init" and the other commands do not need.
    from gateway.demorun import run_demo  # noqa: PLC0415

    return int(run_demo(args.dir, once=args.once))
