"""Exchanges: the audit events of one upload joined into one story.

An exchange starts when the daemon claims an upload (``upload.claimed``) and
collects what happened to it: who sent it and when, its message id, whether it
was accepted, how many records went to which municipality, and for each
municipality's outbox file when it was written, downloaded and purged.

Events are joined on ``upload_id`` while the daemon works on the upload, and
on the outbox or archive file name (per account) for what happens later over
SFTP and in the retention job. A record's data subject is only ever known by
pseudonym: :class:`ExchangeBuilder` is told which pseudonyms to look for and
marks the municipalities whose ``records.routed`` events named one of them,
and the rejected uploads whose ``records.received`` events did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from gateway.audit_tools.chain import parse_time

DELIVERED_KINDS = frozenset({"delivered", "outbox"})


@dataclass
class Delivery:
    """One municipality's outbox file of an exchange."""

    municipality: str
    file: str = ""
    records: int = 0
    written_at: datetime | None = None
    downloaded_at: datetime | None = None
    removed_at: datetime | None = None
    purged_at: datetime | None = None
    overdue: bool = False


@dataclass
class Exchange:
    """Everything the trail says about one upload."""

    upload_id: str
    intermediary: str
    file: str
    received_at: datetime
    size: int = 0
    message_id: str = ""
    outcome: str = ""
    finding_codes: list[str] = field(default_factory=list)
    routed: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    matched: set[str] = field(default_factory=set)
    received_subject: bool = False
    archived_file: str = ""
    purged_at: datetime | None = None

    def delivery(self, municipality: str) -> Delivery:
        """The delivery to *municipality*, created on first use."""
        return self.deliveries.setdefault(municipality, Delivery(municipality))


def file_name(value: object) -> str:
    """The bare file name of a field that may hold a path."""
    return PurePosixPath(str(value)).name


class ExchangeBuilder:
    """Feeds on audit records, oldest first, and builds the exchanges."""

    def __init__(
        self,
        municipality_account: Callable[[str], str] = str,
        subjects: Iterable[str] = (),
    ) -> None:
        self.exchanges: dict[str, Exchange] = {}
        self._account = municipality_account
        self._subjects = frozenset(subjects)
        self._completed: dict[tuple[str, str], datetime] = {}
        self._outbox: dict[tuple[str, str], Delivery] = {}
        self._stored: dict[tuple[str, str], Exchange] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], datetime], None]] = {
            "upload.completed": self._upload_completed,
            "upload.claimed": self._upload_claimed,
            "message.validated": self._message_validated,
            "message.rejected": self._message_rejected,
            "records.routed": self._records_routed,
            "records.received": self._records_received,
            "delivery.written": self._delivery_written,
            "receipt.written": self._receipt_written,
            "message.archived": self._message_archived,
            "delivery.downloaded": self._delivery_downloaded,
            "delivery.removed": self._delivery_removed,
            "delivery.overdue": self._delivery_overdue,
            "retention.purged": self._retention_purged,
        }

    def feed(self, records: Iterable[dict[str, Any]]) -> ExchangeBuilder:
        """Take in every record; returns self for chaining."""
        for record in records:
            handler = self._handlers.get(record["event"])
            if handler is not None:
                handler(record["fields"], parse_time(record["time"]))
        return self

    def _exchange(self, fields: dict[str, Any]) -> Exchange | None:
        return self.exchanges.get(str(fields.get("upload_id", "")))

    def _upload_completed(self, fields: dict[str, Any], at: datetime) -> None:
        key = (str(fields.get("account")), file_name(fields.get("file")))
        self._completed[key] = at

    def _upload_claimed(self, fields: dict[str, Any], at: datetime) -> None:
        account, file = str(fields.get("account")), file_name(fields.get("file"))
        exchange = Exchange(
            upload_id=str(fields.get("upload_id")),
            intermediary=account,
            file=file,
            received_at=self._completed.pop((account, file), at),
            size=int(fields.get("size", 0)),
        )
        self.exchanges[exchange.upload_id] = exchange
        self._stored[(account, file)] = exchange

    def _message_validated(self, fields: dict[str, Any], at: datetime) -> None:
        exchange = self._exchange(fields)
        if exchange is not None:
            exchange.message_id = str(fields.get("message_id") or "")
            exchange.outcome = str(fields.get("outcome", ""))
            exchange.finding_codes = list(fields.get("finding_codes", []))

    def _message_rejected(self, fields: dict[str, Any], at: datetime) -> None:
        exchange = self._exchange(fields)
        if exchange is not None:
            exchange.message_id = str(fields.get("message_id") or exchange.message_id)
            exchange.outcome = "rejected"
            exchange.finding_codes = list(fields.get("finding_codes", []))

    def _records_routed(self, fields: dict[str, Any], at: datetime) -> None:
        exchange = self._exchange(fields)
        if exchange is None:
            return
        municipality = self._account(str(fields.get("municipality")))
        subjects = fields.get("subjects", [])
        exchange.routed[municipality] = exchange.routed.get(municipality, 0) + len(
            subjects
        )
        exchange.message_id = exchange.message_id or str(fields.get("message_id", ""))
        if self._subjects and not self._subjects.isdisjoint(subjects):
            exchange.matched.add(municipality)

    def _records_received(self, fields: dict[str, Any], at: datetime) -> None:
        # Only for reports rejected: their subjects reached no municipality.
        exchange = self._exchange(fields)
        subjects = fields.get("subjects", [])
        if exchange is not None and not self._subjects.isdisjoint(subjects):
            exchange.received_subject = True

    def _delivery_written(self, fields: dict[str, Any], at: datetime) -> None:
        exchange = self._exchange(fields)
        if exchange is None:
            return
        delivery = exchange.delivery(self._account(str(fields.get("municipality"))))
        delivery.file = file_name(fields.get("file"))
        delivery.records = int(fields.get("record_count", 0))
        delivery.written_at = at
        self._outbox[(delivery.municipality, delivery.file)] = delivery

    def _receipt_written(self, fields: dict[str, Any], at: datetime) -> None:
        # The receipt's outcome (accepted or rejected) is the final word.
        exchange = self._exchange(fields)
        if exchange is not None and fields.get("outcome"):
            exchange.outcome = str(fields["outcome"])

    def _message_archived(self, fields: dict[str, Any], at: datetime) -> None:
        exchange = self._exchange(fields)
        if exchange is not None:
            exchange.archived_file = file_name(fields.get("file"))
            key = (exchange.intermediary, exchange.archived_file)
            self._stored[key] = exchange

    def _outbox_file(self, fields: dict[str, Any]) -> Delivery | None:
        key = (str(fields.get("account")), file_name(fields.get("file")))
        return self._outbox.get(key)

    def _delivery_downloaded(self, fields: dict[str, Any], at: datetime) -> None:
        delivery = self._outbox_file(fields)
        if delivery is not None and delivery.downloaded_at is None:
            delivery.downloaded_at = at

    def _delivery_removed(self, fields: dict[str, Any], at: datetime) -> None:
        delivery = self._outbox_file(fields)
        if delivery is not None and delivery.removed_at is None:
            delivery.removed_at = at

    def _delivery_overdue(self, fields: dict[str, Any], at: datetime) -> None:
        delivery = self._outbox_file(fields)
        if delivery is not None:
            delivery.overdue = True

    def _retention_purged(self, fields: dict[str, Any], at: datetime) -> None:
        if fields.get("kind") in DELIVERED_KINDS:
            delivery = self._outbox_file(fields)
            if delivery is not None:
                delivery.purged_at = at
            return
        key = (str(fields.get("account")), file_name(fields.get("file")))
        exchange = self._stored.get(key)
        if exchange is not None:
            exchange.purged_at = at
