"""Operational logging with structlog.

Logs are JSON lines on standard error, or a readable coloured line per event when
standard error is a terminal. One event name per domain event
(``upload.completed``, ``message.rejected``); fixed keys; never personal data.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of each write.

    Binding the stream once at configuration would keep writing to a stream that a
    test harness or a daemonising wrapper has since closed and replaced.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR: Any = _CurrentStderr()


def configure(*, json_lines: bool | None = None, level: int = logging.INFO) -> None:
    """Set up structlog for the whole process."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    """A logger bound to the component *name*."""
    return structlog.get_logger(component=name)
