"""``audit export --format logboek``: the trail in Logboek Dataverwerkingen form.

The Dutch government's Logboek Dataverwerkingen standard (Logius) logs each
processing of personal data as a span in the OpenTelemetry sense, with the
fields ``trace_id`` (16 bytes), ``span_id`` (8 bytes), ``parent_span_id``,
``name``, ``start_time`` and ``end_time`` (milliseconds), ``status_code``
(``STATUS_CODE_UNSET`` / ``_OK`` / ``_ERROR``), ``resource`` and
``attributes`` with the ``dpl.core.`` keys ``processing_activity_id``,
``data_subject_id`` and ``data_subject_id_type``.

Mapping (see ``docs/audit.md``): one trace per upload, its id derived from the
upload id; a root span ``wage-report.exchange`` from the first to the last event
of the upload; one child span per audit event of that upload (start and end are
the event's time: the trail records moments, not durations); and for every
pseudonym in a ``records.routed`` event one span ``records.routed`` that names
the data subject. The data subject id is the keyed pseudonym: the trail holds no
BSN to encrypt, and the pseudonym reveals nothing without the key.

Ids are derived from the trail by hashing, so exporting twice gives the same
ids and a municipality can take in the export again without duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway import __version__
from gateway.audit_tools.chain import parse_time
from gateway.audit_tools.exchanges import DELIVERED_KINDS, file_name

PROCESSING_ACTIVITY = "urn:loonbrug:processing-activity:wage-report-exchange"
SUBJECT_ID_TYPE = "urn:loonbrug:pseudonym:hmac-sha256"
_LATER_EVENTS = frozenset(
    {"delivery.downloaded", "delivery.removed", "delivery.overdue", "retention.purged"}
)


def _id(length: int, *parts: object) -> str:
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _ms(text: str) -> int:
    return int(parse_time(text).timestamp() * 1000)


@dataclass
class _Trace:
    upload_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    municipalities: set[str] = field(default_factory=set)
    rejected: bool = False

    @property
    def trace_id(self) -> str:
        return _id(32, "trace", self.upload_id)

    @property
    def root_id(self) -> str:
        return _id(16, "span", self.upload_id)


class _Collector:
    """Groups the records of each upload, following its files after the fact."""

    def __init__(self, municipality_account: Callable[[str], str]) -> None:
        self.traces: dict[str, _Trace] = {}
        self._account = municipality_account
        self._files: dict[tuple[str, str], str] = {}

    def feed(self, record: dict[str, Any]) -> None:
        fields = record["fields"]
        upload_id = fields.get("upload_id")
        if record["event"] in _LATER_EVENTS:
            upload_id = self._files.get(
                (fields.get("account"), file_name(fields.get("file")))
            )
        if not isinstance(upload_id, str):
            return
        trace = self.traces.setdefault(upload_id, _Trace(upload_id))
        trace.records.append(record)
        self._note(trace, record["event"], fields)

    def _note(self, trace: _Trace, event: str, fields: dict[str, Any]) -> None:
        if event == "message.rejected":
            trace.rejected = True
        if event in {"records.routed", "delivery.written"}:
            trace.municipalities.add(self._account(str(fields.get("municipality"))))
        if event in {"delivery.written", "message.archived"}:
            account = str(fields.get("account"))
            if event == "delivery.written":
                account = self._account(str(fields.get("municipality")))
            self._files[(account, file_name(fields.get("file")))] = trace.upload_id


def _span(
    trace: _Trace,
    span_id: str,
    *,
    parent: str | None,
    name: str,
    times: tuple[str, str],
    attributes: dict[str, Any],
    status: str = "STATUS_CODE_UNSET",
) -> dict[str, Any]:
    return {
        "trace_id": trace.trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "start_time": _ms(times[0]),
        "end_time": _ms(times[1]),
        "status_code": status,
        "resource": {
            "attributes": {"service.name": "loonbrug", "service.version": __version__}
        },
        "attributes": {
            "dpl.core.processing_activity_id": PROCESSING_ACTIVITY,
            "loonbrug.upload_id": trace.upload_id,
            **attributes,
        },
    }


def _spans(trace: _Trace) -> Iterator[dict[str, Any]]:
    first, last = trace.records[0]["time"], trace.records[-1]["time"]
    yield _span(
        trace,
        trace.root_id,
        parent=None,
        name="wage-report.exchange",
        times=(first, last),
        attributes={},
        status="STATUS_CODE_UNSET" if trace.rejected else "STATUS_CODE_OK",
    )
    for record in trace.records:
        yield from _event_spans(trace, record)


def _event_spans(trace: _Trace, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One span for the event, or one per data subject for records.routed."""
    fields = record["fields"]
    plain = {
        f"loonbrug.{key}": value
        for key, value in fields.items()
        if key != "subjects" and isinstance(value, str | int)
    }
    if record["event"] != "records.routed":
        yield _child(trace, record, (record["seq"],), plain)
        return
    for index, subject in enumerate(fields.get("subjects", [])):
        subject_fields = {
            **plain,
            "dpl.core.data_subject_id": subject,
            "dpl.core.data_subject_id_type": SUBJECT_ID_TYPE,
        }
        yield _child(trace, record, (record["seq"], index), subject_fields)


def _child(
    trace: _Trace,
    record: dict[str, Any],
    position: tuple[int, ...],
    attributes: dict[str, Any],
) -> dict[str, Any]:
    return _span(
        trace,
        _id(16, "span", trace.upload_id, *position),
        parent=trace.root_id,
        name=record["event"],
        times=(record["time"], record["time"]),
        attributes=attributes,
    )


def export(
    records: Iterable[dict[str, Any]],
    municipality_account: Callable[[str], str],
    municipality: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The Logboek spans of every upload, or of those that reached *municipality*.

    With *municipality* set, a trace carries only that municipality's
    ``records.routed`` subjects: another municipality's residents are none of
    its business (data minimisation).
    """
    collector = _Collector(municipality_account)
    for record in records:
        collector.feed(record)
    for trace in collector.traces.values():
        if municipality is not None:
            if municipality not in trace.municipalities:
                continue
            trace.records = [
                r
                for r in trace.records
                if _concerns(r, municipality, municipality_account)
            ]
        yield from _spans(trace)


def _concerns(
    record: dict[str, Any], municipality: str, account: Callable[[str], str]
) -> bool:
    """False for records about another municipality's part of an upload."""
    fields = record["fields"]
    if "municipality" in fields:
        return account(str(fields["municipality"])) == municipality
    outbox_event = record["event"].startswith("delivery.") or (
        record["event"] == "retention.purged" and fields.get("kind") in DELIVERED_KINDS
    )
    return not outbox_event or fields.get("account") == municipality
