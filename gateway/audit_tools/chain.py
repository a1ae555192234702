"""The audit trail's line format and hash chain.

Every line of ``audit-YYYY-MM-DD.jsonl`` is one JSON object with exactly the
keys ``seq`` (1, 2, 3, ...), ``time`` (UTC, ISO 8601 with microseconds and
``Z``), ``event``, ``fields``, ``prev`` (the previous line's ``hash``; 64 zeros
for the very first line) and ``hash``. The hash is SHA-256 over the canonical
form of the object without its ``hash`` key: keys sorted, no spaces, UTF-8.
Lines are written in that same canonical form, ``hash`` included.

The chain runs across the daily files: the first line of a day links to the
last line of the day before. A hash chain alone only shows that lines were
changed by someone who did not recompute every later hash; the signed
checkpoints (:mod:`gateway.audit_tools.checkpoints`) are what pin it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
RECORD_KEYS = frozenset({"seq", "time", "event", "fields", "prev", "hash"})
FILE_NAME = re.compile(r"^audit-(\d{4}-\d{2}-\d{2})\.jsonl$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def canonical(data: dict[str, Any]) -> bytes:
    """The canonical bytes of *data*: sorted keys, no spaces, UTF-8."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def line_hash(record: dict[str, Any]) -> str:
    """The SHA-256 hex digest of *record* without its own ``hash`` key."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def format_time(moment: datetime) -> str:
    """A UTC time as written in the trail: microseconds and a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time` (also accepts other ISO forms)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def file_name(day: date) -> str:
    """The trail's file name for one UTC day."""
    return f"audit-{day.isoformat()}.jsonl"


def file_day(path: Path) -> date | None:
    """The day a trail file is named after, or None for other files."""
    match = FILE_NAME.match(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def trail_files(folder: Path) -> list[Path]:
    """The trail's daily files in *folder*, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_file() and file_day(p) is not None]
    return sorted(found, key=lambda p: p.name)


def make_record(
    seq: int, moment: datetime, event: str, fields: dict[str, Any], prev: str
) -> dict[str, Any]:
    """A complete record, its hash included."""
    record: dict[str, Any] = {
        "seq": seq,
        "time": format_time(moment),
        "event": event,
        "fields": fields,
        "prev": prev,
    }
    record["hash"] = line_hash(record)
    return record


def record_problem(record: object) -> str | None:
    """What is wrong with the shape of a parsed line, or None if nothing."""
    if not isinstance(record, dict) or set(record) != RECORD_KEYS:
        return "is not an audit record (wrong keys)"
    checks = (
        (isinstance(record["seq"], int) and record["seq"] > 0, "bad sequence number"),
        (isinstance(record["event"], str), "bad event name"),
        (isinstance(record["fields"], dict), "bad fields"),
        (isinstance(record["prev"], str) and _HEX64.match(record["prev"]), "bad prev"),
        (isinstance(record["hash"], str) and _HEX64.match(record["hash"]), "bad hash"),
    )
    for good, message in checks:
        if not good:
            return message
    try:
        parse_time(record["time"])
    except (TypeError, ValueError, AttributeError):
        return "bad time"
    return None


@dataclass(frozen=True)
class RawLine:
    """One line of a trail file as stored, with its place."""

    path: Path
    number: int
    offset: int
    data: bytes
    terminated: bool

    def parse(self) -> dict[str, Any] | None:
        """The record on this line if it is a well-formed one, else None."""
        try:
            record = json.loads(self.data)
        except (ValueError, UnicodeDecodeError):
            return None
        return record if record_problem(record) is None else None


def raw_lines(path: Path) -> Iterator[RawLine]:
    """Every line of *path* with its number and byte offset, streamed.

    The last line may lack its newline: a line being written right now, or
    one torn by a crash; :attr:`RawLine.terminated` tells which lines are whole.
    """
    offset = 0
    with path.open("rb") as handle:
        for number, data in enumerate(handle, start=1):
            terminated = data.endswith(b"\n")
            yield RawLine(path, number, offset, data.rstrip(b"\n"), terminated)
            offset += len(data)


def records(folder: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed record of the trail, oldest first, for read-only tools.

    Damaged lines and an unfinished last line are skipped: the tools that
    answer questions must work while the daemon writes. ``audit verify`` is
    the tool that reports damage.
    """
    for path in trail_files(folder):
        for line in raw_lines(path):
            record = line.parse() if line.terminated else None
            if record is not None:
                yield record
