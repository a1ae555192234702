"""``audit report``: what went through the gateway in a period, in figures.

Per intermediary: files received, accepted and rejected (rejections counted
per finding code), records routed. Per municipality: records routed, outbox
files written and downloaded, the time from upload to the file being in the
outbox and to its download (median and 95th percentile, nearest-rank), and
pickups that became overdue. Exchanges count in the period in which their
upload was received.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.audit_tools.exchanges import Exchange, ExchangeBuilder
from gateway.audit_tools.query import municipality_resolver
from gateway.config import Config


@dataclass
class IntermediaryFigures:
    """Figures of one intermediary."""

    account: str
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    records: int = 0


@dataclass
class MunicipalityFigures:
    """Figures of one municipality."""

    account: str
    records: int = 0
    written: int = 0
    downloaded: int = 0
    overdue: int = 0
    to_outbox: list[float] = field(default_factory=list)
    to_pickup: list[float] = field(default_factory=list)


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of *values* (share 0.5 = median)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _spread(values: list[float]) -> dict[str, float | None]:
    median = statistics.median(values) if values else None
    return {"median": median, "p95": percentile(values, 0.95), "count": len(values)}


class Figures:
    """The report's figures, built from the exchanges in a period."""

    def __init__(self, start: datetime | None, end: datetime | None) -> None:
        self.start, self.end = start, end
        self.intermediaries: dict[str, IntermediaryFigures] = {}
        self.municipalities: dict[str, MunicipalityFigures] = {}

    def add(self, exchange: Exchange) -> None:
        """Count one exchange if it was received in the period."""
        if self.start and exchange.received_at < self.start:
            return
        if self.end and exchange.received_at >= self.end:
            return
        sender = self.intermediaries.setdefault(
            exchange.intermediary, IntermediaryFigures(exchange.intermediary)
        )
        sender.received += 1
        if exchange.outcome == "rejected":
            sender.rejected += 1
            sender.rejected_by_code.update(set(exchange.finding_codes))
        elif exchange.outcome:
            sender.accepted += 1
        sender.records += sum(exchange.routed.values())
        self._add_deliveries(exchange)

    def _add_deliveries(self, exchange: Exchange) -> None:
        for name in sorted(set(exchange.routed) | set(exchange.deliveries)):
            figures = self.municipalities.setdefault(name, MunicipalityFigures(name))
            figures.records += exchange.routed.get(name, 0)
            delivery = exchange.deliveries.get(name)
            if delivery is None:
                continue
            figures.overdue += delivery.overdue
            if delivery.written_at is not None:
                figures.written += 1
                seconds = (delivery.written_at - exchange.received_at).total_seconds()
                figures.to_outbox.append(seconds)
            if delivery.downloaded_at is not None:
                figures.downloaded += 1
                seconds = (
                    delivery.downloaded_at - exchange.received_at
                ).total_seconds()
                figures.to_pickup.append(seconds)

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        senders = sorted(self.intermediaries.values(), key=lambda f: f.account)
        receivers = sorted(self.municipalities.values(), key=lambda f: f.account)
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "intermediaries": [_sender_dict(f) for f in senders],
            "municipalities": [_receiver_dict(f) for f in receivers],
        }


def _sender_dict(figures: IntermediaryFigures) -> dict[str, Any]:
    return {
        "account": figures.account,
        "received": figures.received,
        "accepted": figures.accepted,
        "rejected": figures.rejected,
        "rejected_by_code": dict(sorted(figures.rejected_by_code.items())),
        "records_routed": figures.records,
    }


def _receiver_dict(figures: MunicipalityFigures) -> dict[str, Any]:
    return {
        "account": figures.account,
        "records_routed": figures.records,
        "files_written": figures.written,
        "files_downloaded": figures.downloaded,
        "pickups_overdue": figures.overdue,
        "seconds_to_outbox": _spread(figures.to_outbox),
        "seconds_to_pickup": _spread(figures.to_pickup),
    }


def build(
    records: Iterable[dict[str, Any]],
    config: Config,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """The report's figures for uploads received from *start* until *end*."""
    builder = ExchangeBuilder(municipality_resolver(config)).feed(records)
    figures = Figures(start, end)
    for exchange in builder.exchanges.values():
        figures.add(exchange)
    return figures.to_dict()


def duration(seconds: float | None) -> str:
    """A duration for people: ``42s``, ``3m 05s``, ``2h 10m``, or ``-``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


SENDER_HEADS = ["intermediary", "received", "accepted", "rejected", "by finding"]
SENDER_HEADS += ["records"]
RECEIVER_HEADS = ["municipality", "records", "files", "downloaded", "outbox p50"]
RECEIVER_HEADS += ["outbox p95", "pickup p50", "pickup p95", "overdue"]


def sender_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row of cells per intermediary, in the order of SENDER_HEADS."""
    return [
        [
            s["account"],
            str(s["received"]),
            str(s["accepted"]),
            str(s["rejected"]),
            ", ".join(f"{c} {n}" for c, n in s["rejected_by_code"].items()) or "-",
            str(s["records_routed"]),
        ]
        for s in report["intermediaries"]
    ]


def receiver_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row of cells per municipality, in the order of RECEIVER_HEADS."""
    return [
        [
            m["account"],
            str(m["records_routed"]),
            str(m["files_written"]),
            str(m["files_downloaded"]),
            duration(m["seconds_to_outbox"]["median"]),
            duration(m["seconds_to_outbox"]["p95"]),
            duration(m["seconds_to_pickup"]["median"]),
            duration(m["seconds_to_pickup"]["p95"]),
            str(m["pickups_overdue"]),
        ]
        for m in report["municipalities"]
    ]


def period(report: dict[str, Any]) -> str:
    """The report's period in words."""
    return f"{report['from'] or 'start of trail'} to {report['to'] or 'now'}"


def _table(heads: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(c) for c in column) for column in zip(heads, *rows, strict=False)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [heads, *rows]
    ]


def as_text(report: dict[str, Any]) -> str:
    """The report as plain text tables."""
    lines = [f"Audit report, uploads received {period(report)}", ""]
    lines += ["Intermediaries", *_table(SENDER_HEADS, sender_rows(report)), ""]
    lines += ["Municipalities", *_table(RECEIVER_HEADS, receiver_rows(report))]
    return "\n".join(lines) + "\n"
