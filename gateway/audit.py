"""Audit events: one line per domain event, with fixed keys.

This is the interface every part of the gateway writes to; see
``docs/audit-events.md`` for the vocabulary. An audit event never carries a BSN,
a name or an amount: records are referred to by a keyed pseudonym.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol


class AuditSink(Protocol):
    """Anything that accepts audit events."""

    def emit(self, event: str, **fields: object) -> None:
        """Record one audit event."""


class MemoryAudit:
    """An audit sink that keeps events in a list, for tests and dry runs."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: object) -> None:
        """Remember the event."""
        with self._lock:
            self.events.append({"event": event, **fields})


class AuditLog:
    """Appends audit events as JSON lines to ``audit.jsonl`` in a folder."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = folder / "audit.jsonl"
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: object) -> None:
        """Append one event."""
        line = {"time": datetime.now(UTC).isoformat(), "event": event, **fields}
        data = json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(data)

    def close(self) -> None:
        """Flush and close (nothing is held open in this implementation)."""
