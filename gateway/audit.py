"""Audit events: the gateway's tamper-evident, pseudonymised audit trail.

Every part of the gateway writes through the :class:`AuditSink` interface,
``emit(event, **fields)``; field values are strings, integers or lists of
strings, and never personal data: records are referred to by a keyed pseudonym
(:mod:`gateway.pseudonym`). See ``docs/audit.md`` for the vocabulary and format.

:class:`AuditLog` appends each event as one hash-chained JSON line
(:mod:`gateway.audit_tools.chain`) to a file per UTC day, and seals the chain
with signed checkpoints at intervals and at :meth:`AuditLog.close`
(:mod:`gateway.audit_tools.checkpoints`).

Durability: each line goes to the kernel with a single ``write`` on an
unbuffered descriptor, so it survives a crash of the process at once; it is
forced to the disk (``fsync``) at each checkpoint, when a day's file is
finished, and at close. An fsync per line would cost a disk flush per audit
event, many per upload; a power cut can lose at most the lines since the last
checkpoint, which were never sealed (a checkpoint is signed only after its own
line was forced to disk).

Restart after a crash: the chain resumes from the last whole line. A torn last
line (the process died in the middle of a write) is never rewritten or removed:
it is ended with a newline where it stands, and the next record is an
``audit.recovered`` event naming its file and byte offset, which
``audit verify`` accepts in place of the torn line.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway import logs
from gateway.audit_tools import chain, checkpoints
from gateway.audit_tools.checkpoints import Checkpoint, Signer
from gateway.errors import AuditError, LoonbrugError

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.pgp import OpenPgp

_FILE_MODE = 0o600
_log = logs.get("audit")


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
        _check_fields(fields)
        with self._lock:
            self.events.append({"event": event, **fields})

    def named(self, event: str) -> list[dict[str, object]]:
        """The remembered events called *event*, oldest first."""
        with self._lock:
            return [e for e in self.events if e["event"] == event]


def _check_fields(fields: dict[str, object]) -> None:
    """Refuse field values outside the audit vocabulary's types.

    Strings, integers, lists of strings, and None for a value that is absent;
    anything else (an object, bytes, a float) could smuggle in a repr nobody
    reviewed, so it is refused.
    """
    for key, value in fields.items():
        if value is None or isinstance(value, str | int):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            continue
        raise AuditError(f"audit field {key!r} has type {type(value).__name__}")


def _now() -> datetime:
    return datetime.now(UTC)


def read_events(folder: Path) -> list[dict[str, Any]]:
    """Every event of the trail in *folder* as ``{"event": ..., **fields}``."""
    return [
        {"event": record["event"], **record["fields"]}
        for record in chain.records(folder)
    ]


class _Resume:
    """Where the chain left off in an existing trail, found at start-up."""

    def __init__(self, folder: Path) -> None:
        self.seq = 0
        self.hash = chain.GENESIS
        self.time: datetime | None = None
        self.torn: chain.RawLine | None = None
        self.unterminated: chain.RawLine | None = None
        for path in reversed(chain.trail_files(folder)):
            if self._scan(path):
                break

    def _scan(self, path: Path) -> bool:
        """Find the last whole record of *path*; False if it holds none."""
        last: dict[str, Any] | None = None
        for line in chain.raw_lines(path):
            record = line.parse()
            whole = record is not None and chain.line_hash(record) == record["hash"]
            if line.terminated and record is not None:
                last = record
            elif not line.terminated and whole:
                last, self.unterminated = record, line
            elif not line.terminated:
                self.torn = line
        if last is None:
            return False
        self.seq, self.hash = last["seq"], last["hash"]
        self.time = chain.parse_time(last["time"])
        return True


class AuditLog:
    """The hash-chained audit trail in *folder*, one file per UTC day.

    ``AuditLog(folder)`` writes the chain without checkpoints (for tests and
    tools that only need a sink); :meth:`open` builds the daemon's trail with
    signed checkpoints from the configuration. :meth:`emit` is thread-safe.
    """

    def __init__(
        self,
        folder: Path,
        *,
        signer: Signer | None = None,
        key_fingerprint: str = "",
        checkpoint_copy_dir: Path | None = None,
        checkpoint_interval: float = 0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder = folder
        self._signer = signer
        self._fingerprint = key_fingerprint
        self._copy_dir = checkpoint_copy_dir
        self._clock = clock
        self._lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._fd: int | None = None
        self._day: date | None = None
        self._line = 0
        self._closed = False
        self._stop = threading.Event()
        self._resume(_Resume(folder))
        self._last_checkpoint_seq = self._seq
        self._timer = self._start_timer(checkpoint_interval)

    @classmethod
    def open(cls, config: Config, pgp: OpenPgp | None = None) -> AuditLog:
        """The daemon's audit trail as configured, sealed with the gateway key."""
        if pgp is None:
            # Imported here so that processes which only read the trail, or
            # only need a sink, never load the OpenPGP adapter.
            from gateway.pgp import OpenPgp  # noqa: PLC0415

            pgp = OpenPgp(
                config.gateway.gnupg_home, timeout=config.gateway.gpg_timeout_seconds
            )
        return cls(
            config.audit.dir,
            signer=pgp,
            key_fingerprint=config.gateway.key_fingerprint,
            checkpoint_copy_dir=config.audit.checkpoint_copy_dir,
            checkpoint_interval=config.audit.checkpoint_interval_seconds,
        )

    @property
    def path(self) -> Path:
        """The file the next line goes to (today's file)."""
        moment = max(self._clock(), self._time) if self._time else self._clock()
        return self.folder / chain.file_name(moment.date())

    def _resume(self, state: _Resume) -> None:
        self._seq, self._hash = state.seq, state.hash
        self._time = state.time
        for line in (state.unterminated, state.torn):
            if line is not None:
                _append_bytes(line.path, b"\n")
        if state.torn is not None:
            self.emit(
                "audit.recovered",
                file=state.torn.path.name,
                line=state.torn.number,
                offset=state.torn.offset,
                length=len(state.torn.data),
            )

    def emit(self, event: str, **fields: object) -> None:
        """Append one event to the chain."""
        _check_fields(fields)
        with self._lock:
            self._append(event, dict(fields))

    def _append(self, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Write one record; the caller holds the lock."""
        if self._closed:
            raise AuditError("the audit log is closed")
        # A clock stepped back (NTP) must not break the trail's time order.
        moment = self._clock()
        if self._time is not None and moment < self._time:
            moment = self._time
        self._switch_day(moment.date())
        record = chain.make_record(self._seq + 1, moment, event, fields, self._hash)
        assert self._fd is not None
        _write_all(self._fd, chain.canonical(record) + b"\n")
        self._seq, self._hash, self._time = record["seq"], record["hash"], moment
        self._line += 1
        return record

    def _switch_day(self, day: date) -> None:
        """Make sure the file of *day* is the one open for appending."""
        if day == self._day and self._fd is not None:
            return
        self._close_file()
        path = self.folder / chain.file_name(day)
        created = not path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        try:
            self._fd = os.open(path, flags, _FILE_MODE)
        except OSError as exc:
            raise AuditError(f"cannot open audit file {path.name}") from exc
        if created:
            _fsync_dir(self.folder)
        self._day = day
        self._line = _count_lines(path)

    def _close_file(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def checkpoint(self) -> Path | None:
        """Seal the chain so far with a signed checkpoint; None if not sealed.

        The ``checkpoint.written`` line is itself the line the checkpoint
        covers, so a trail cut anywhere before its end is caught. Nothing is
        written when no line was added since the last checkpoint.
        """
        if self._signer is None:
            return None
        with self._checkpoint_lock:
            point = self._checkpoint_line()
            if point is None:
                return None
            try:
                return checkpoints.write(
                    self.folder, point, self._signer, self._fingerprint, self._copy_dir
                )
            except LoonbrugError as exc:
                _log.error("checkpoint.failed", seq=point.seq, error=type(exc).__name__)
                self.emit("checkpoint.failed", seq=point.seq, reason=type(exc).__name__)
                return None

    def _checkpoint_line(self) -> Checkpoint | None:
        with self._lock:
            if self._closed or self._seq == self._last_checkpoint_seq:
                return None
            name = Checkpoint(self._seq + 1, "", "", "", 0).file_name
            record = self._append("checkpoint.written", {"checkpoint": name})
            assert self._fd is not None
            os.fsync(self._fd)
            self._last_checkpoint_seq = record["seq"]
            return Checkpoint(
                seq=record["seq"],
                hash=record["hash"],
                time=record["time"],
                file=chain.file_name(self._day or self._clock().date()),
                line=self._line,
            )

    def _start_timer(self, interval: float) -> threading.Thread | None:
        if self._signer is None or interval <= 0:
            return None
        thread = threading.Thread(
            target=self._run_timer, args=(interval,), name="audit-checkpoints"
        )
        thread.daemon = True
        thread.start()
        return thread

    def _run_timer(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.checkpoint()
            except (LoonbrugError, OSError) as exc:
                _log.error("checkpoint.failed", error=type(exc).__name__)

    def close(self) -> None:
        """Stop the checkpoint timer, write a final checkpoint, flush and close."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        self.checkpoint()
        with self._lock:
            self._close_file()
            self._closed = True

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of *data*; os.write may write less than asked."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise AuditError(f"cannot write the audit trail: {exc.strerror}") from exc


def _append_bytes(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(
            chunk.count(b"\n") for chunk in iter(lambda: handle.read(65536), b"")
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
