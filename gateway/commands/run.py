"""``loonbrug run -c FILE``: the gateway daemon in the foreground.

Logs are JSON lines on standard error (a readable line per event on a
terminal). SIGTERM and SIGINT let the uploads in hand finish and stop within
:data:`STOP_SECONDS`; SIGHUP reloads the configuration file, keeping the old
configuration if the new one has a problem. A second daemon on the same state
folder exits with status 2.
"""

from __future__ import annotations

import argparse
import queue
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from gateway import logs
from gateway.config import load

STOP_SECONDS = 60.0
_STOP = "stop"
_RELOAD = "reload"


def register(subparsers: Any) -> None:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run", help="run the gateway daemon in the foreground"
    )
    parser.add_argument(
        "-c", "--config", type=Path, required=True, help="the configuration file"
    )
    parser.set_defaults(handler=_handle)


def _install_signals(commands: queue.SimpleQueue[str]) -> None:
    """Turn signals into commands for the main loop (handlers do nothing else)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        commands.put(_STOP)

    def reload(signum: int, frame: FrameType | None) -> None:
        commands.put(_RELOAD)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)


def _handle(args: argparse.Namespace) -> int:
    from gateway.daemon import Daemon  # noqa: PLC0415 (keeps other commands light)

    logs.configure()
    daemon = Daemon(load(args.config))
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()
    _install_signals(commands)
    daemon.start()
    try:
        while True:
            try:
                command = commands.get(timeout=1.0)
            except queue.Empty:
                continue
            if command == _STOP:
                break
            daemon.reload()
    finally:
        daemon.stop(STOP_SECONDS)
    return 0
