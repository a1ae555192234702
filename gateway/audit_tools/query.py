"""``audit query``: which exchanges concerned a person, a message or an account.

For a BSN the question is answered without the BSN ever being in the trail:
the BSN is turned into its pseudonym under every key in the pseudonym key file
(current and retired), and the exchanges whose ``records.routed`` events name
one of those pseudonyms are the ones that carried that person's records; a
rejected upload whose ``records.received`` events name one is shown too, as a
row without a municipality, since it reached none. This
is how a data-subject access request (GDPR art. 15) is answered: see
``docs/audit.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.audit_tools.exchanges import Delivery, Exchange, ExchangeBuilder
from gateway.config import Config


def municipality_resolver(config: Config) -> Callable[[str], str]:
    """Maps a municipality code or account id as logged to the account id."""
    by_code = {m.code: m.id for m in config.municipalities.values()}
    return lambda value: by_code.get(value, value)


@dataclass(frozen=True)
class Question:
    """What the auditor asks about; unset parts do not narrow the answer."""

    pseudonyms: frozenset[str] | None = None
    message_id: str | None = None
    account: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def wants(self, exchange: Exchange) -> bool:
        """True when *exchange* is part of the answer."""
        if self.pseudonyms is not None and not _concerns_subject(exchange):
            return False
        if self.message_id and exchange.message_id != self.message_id:
            return False
        if self.account and self.account not in _accounts(exchange):
            return False
        if self.start and exchange.received_at < self.start:
            return False
        return not (self.end and exchange.received_at >= self.end)

    def municipalities(self, exchange: Exchange) -> list[str]:
        """The municipalities of *exchange* to show a row for."""
        names = sorted(set(exchange.routed) | set(exchange.deliveries))
        if self.pseudonyms is not None:
            names = [m for m in names if m in exchange.matched]
        if self.account and self.account != exchange.intermediary:
            names = [m for m in names if m == self.account]
        return names


def _concerns_subject(exchange: Exchange) -> bool:
    return bool(exchange.matched) or exchange.received_subject


def _accounts(exchange: Exchange) -> set[str]:
    return {exchange.intermediary, *exchange.routed, *exchange.deliveries}


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _row(exchange: Exchange, municipality: str, delivery: Delivery) -> dict[str, Any]:
    return {
        "upload_id": exchange.upload_id,
        "intermediary": exchange.intermediary,
        "upload_file": exchange.file,
        "received": _stamp(exchange.received_at),
        "message_id": exchange.message_id,
        "outcome": exchange.outcome,
        "municipality": municipality,
        "records": exchange.routed.get(municipality, delivery.records),
        "outbox_file": delivery.file,
        "written": _stamp(delivery.written_at),
        "downloaded": _stamp(delivery.downloaded_at),
        "purged": _stamp(delivery.purged_at),
        "upload_purged": _stamp(exchange.purged_at),
    }


def ask(
    records: Iterable[dict[str, Any]], config: Config, question: Question
) -> list[dict[str, Any]]:
    """One row per exchange and municipality that answers *question*."""
    builder = ExchangeBuilder(municipality_resolver(config), question.pseudonyms or ())
    rows: list[dict[str, Any]] = []
    for exchange in builder.feed(records).exchanges.values():
        if not question.wants(exchange):
            continue
        municipalities = question.municipalities(exchange)
        # A rejected upload reached no municipality: one row says it came in.
        if not municipalities and (
            question.pseudonyms is None or exchange.received_subject
        ):
            rows.append(_row(exchange, "", Delivery("")))
        for municipality in municipalities:
            delivery = exchange.deliveries.get(municipality, Delivery(municipality))
            rows.append(_row(exchange, municipality, delivery))
    return rows


_COLUMNS = (
    ("received", "received"),
    ("intermediary", "from"),
    ("message_id", "message"),
    ("outcome", "outcome"),
    ("municipality", "to"),
    ("records", "records"),
    ("written", "in outbox"),
    ("downloaded", "downloaded"),
    ("purged", "purged"),
)


def as_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain text table (empty cells shown as ``-``)."""
    cells = [[str(row[key]) or "-" for key, _ in _COLUMNS] for row in rows]
    heads = [title for _, title in _COLUMNS]
    widths = [
        max(len(c) for c in column) for column in zip(heads, *cells, strict=False)
    ]
    lines = [heads, *cells]
    text = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    return "\n".join(text) + "\n"
