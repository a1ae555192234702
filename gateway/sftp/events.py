"""What the SFTP service records: one function per kind of event, fixed fields.

Every event goes to the audit trail and to the operational log with the same
fields: ``connection_id``, ``account``, ``remote`` and the event's own. File
names are the partner's own upload names or the gateway's deterministic outbox
names; paths a client sent are shown only after cleaning, never raw.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway import logs
from gateway.audit import AuditSink
from gateway.errors import LoonbrugError


class DeliveryLedger(Protocol):
    """The part of the ledger the SFTP service writes to."""

    def record_delivery(
        self, account: str, file_name: str, event: str, at: datetime
    ) -> None:
        """Note that *account* downloaded or removed *file_name*."""


@dataclass
class Recorder:
    """Records the events of one connection, with its identity bound once."""

    audit: AuditSink
    ledger: DeliveryLedger | None
    connection_id: str
    remote: str
    account: str = ""
    _log: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._log = logs.get("sftp")

    def _emit(self, event: str, *, warning: bool = False, **fields: object) -> None:
        fields = {
            "connection_id": self.connection_id,
            "account": self.account,
            "remote": self.remote,
        } | fields
        with self._lock:
            self.audit.emit(event, **fields)
        (self._log.warning if warning else self._log.info)(event, **fields)

    def session_opened(self) -> None:
        """An authenticated account opened its SFTP session."""
        self._emit("session.opened", reason="authenticated")

    def session_closed(self, reason: str) -> None:
        """The session ended, normally or not."""
        self._emit("session.closed", reason=reason)

    def auth_failed(self, account: str, reason: str) -> None:
        """A login attempt failed."""
        self._emit("auth.failed", warning=True, reason=reason, account=account)

    def auth_banned(self, reason: str) -> None:
        """The source address is banned for a while."""
        self._emit("auth.banned", warning=True, reason=reason)

    def denied(self, operation: str, reason: str, path: str = "") -> None:
        """A guard refused an operation; the client heard only "denied"."""
        self._emit(
            "sftp.denied", warning=True, operation=operation, reason=reason, path=path
        )

    def upload_completed(self, file: str, size: int) -> None:
        """A complete upload became visible in the inbox."""
        self._emit("upload.completed", file=file, size=size)

    def delivered(self, event: str, file: str, size: int) -> None:
        """A municipality downloaded or removed an outbox file."""
        self._emit(f"delivery.{event}", file=file, size=size)
        if self.ledger is None:
            return
        try:
            self.ledger.record_delivery(self.account, file, event, datetime.now(UTC))
        except LoonbrugError as exc:
            # The client's transfer succeeded; failing it now would only make
            # it fetch again. The audit event above already holds the fact.
            self._log.error("sftp.ledger_failed", file=file, error=str(exc))

    def failed(self, reason: str) -> None:
        """The connection ended on an unexpected error (the catch-all)."""
        self._log.exception(
            "sftp.connection_failed",
            reason=reason,
            connection_id=self.connection_id,
            remote=self.remote,
        )
