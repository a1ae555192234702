"""The ledger: what happened to every upload, in SQLite.

One row per upload records its account, original file name, size, SHA-256,
message id, state and the time of each step; one row per outbox file records
when it was written and when the municipality downloaded or removed it. The
pipeline writes the row *before* it moves a file, so after a crash the ledger
says which step to resume or redo (see :mod:`gateway.pipeline`).

Duplicate detection rests on two unique columns, filled only by the upload that
owns the value: ``sha256_owner`` (the same file twice) and ``message_owner``
(the same message id twice). A competing upload learns who owns the value
instead of silently taking it, even when two workers race.

The database runs in WAL mode with ``synchronous=FULL``: a committed step
survives a power cut, not only a killed process. One connection is shared by
every thread behind a lock; each call is a short transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from gateway.errors import LedgerError


class State(StrEnum):
    """The steps of an upload through the pipeline, in order."""

    CLAIMING = "claiming"  # row written, file not yet moved out of the inbox
    CLAIMED = "claimed"  # file in work/<upload-id>/
    DECRYPTED = "decrypted"
    VALIDATED = "validated"
    ROUTED = "routed"  # every outbox file written
    RECEIPTED = "receipted"  # receipt written, outcome known
    DONE = "done"  # archived or rejected, work folder removed
    VANISHED = "vanished"  # the file left the inbox before it was claimed


FINAL_STATES = frozenset({State.DONE, State.VANISHED})


class Outcome(StrEnum):
    """How an upload ended."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class DeliveryEvent(StrEnum):
    """What a municipality did with an outbox file."""

    DOWNLOADED = "downloaded"
    REMOVED = "removed"


@dataclass(frozen=True)
class Upload:
    """One upload as the ledger knows it."""

    upload_id: str
    account: str
    file_name: str
    state: State
    size: int | None
    sha256: str | None
    message_id: str | None
    outcome: Outcome | None
    finding_codes: tuple[str, ...]
    received_at: datetime


@dataclass(frozen=True)
class Delivery:
    """One outbox file and what became of it."""

    account: str
    file_name: str
    upload_id: str | None
    municipality: str | None
    written_at: datetime | None
    downloaded_at: datetime | None
    removed_at: datetime | None


@dataclass(frozen=True)
class Written:
    """One outbox file as the pipeline wrote it."""

    account: str
    file_name: str
    municipality: str
    size: int
    sha256: str
    record_count: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    upload_id      TEXT PRIMARY KEY,
    account        TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    state          TEXT NOT NULL,
    size           INTEGER,
    sha256         TEXT,
    sha256_owner   TEXT UNIQUE,
    message_id     TEXT,
    message_owner  TEXT UNIQUE,
    outcome        TEXT,
    finding_codes  TEXT NOT NULL DEFAULT '',
    claiming_at    TEXT,
    claimed_at     TEXT,
    decrypted_at   TEXT,
    validated_at   TEXT,
    routed_at      TEXT,
    receipted_at   TEXT,
    done_at        TEXT,
    vanished_at    TEXT
);
CREATE INDEX IF NOT EXISTS uploads_state ON uploads (state);
CREATE TABLE IF NOT EXISTS deliveries (
    account        TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    upload_id      TEXT,
    municipality   TEXT,
    size           INTEGER,
    sha256         TEXT,
    record_count   INTEGER,
    written_at     TEXT,
    downloaded_at  TEXT,
    removed_at     TEXT,
    PRIMARY KEY (account, file_name)
);
CREATE INDEX IF NOT EXISTS deliveries_upload ON deliveries (upload_id);
"""

_UPLOAD_COLUMNS = (
    "upload_id, account, file_name, state, size, sha256, message_id, outcome,"
    " finding_codes, claiming_at"
)
_DELIVERY_COLUMNS = (
    "account, file_name, upload_id, municipality, written_at, downloaded_at, removed_at"
)


def new_upload_id(now: datetime | None = None) -> str:
    """A fresh upload id: sortable by time, unique by a random suffix."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}"


def _stamp(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat()


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Ledger:
    """The SQLite ledger at :attr:`path`, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            path.chmod(0o600)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"{path}: cannot open the ledger ({exc})") from exc

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise LedgerError(f"ledger update failed ({exc})") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger query failed ({exc})") from exc

    # Uploads

    def begin_claim(
        self, upload_id: str, account: str, file_name: str, at: datetime | None = None
    ) -> None:
        """Record an upload about to be moved out of the inbox."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO uploads (upload_id, account, file_name, state,"
                " claiming_at) VALUES (?, ?, ?, ?, ?)",
                (upload_id, account, file_name, State.CLAIMING, _stamp(at)),
            )

    def set_state(
        self,
        upload_id: str,
        state: State,
        at: datetime | None = None,
        *,
        outcome: Outcome | None = None,
        finding_codes: list[str] | None = None,
    ) -> None:
        """Move an upload to *state*, stamping the time of that step.

        *outcome* and *finding_codes*, when given, are recorded in the same
        transaction (a receipt's outcome together with the receipted state).
        """
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE uploads SET state = ?, {state.value}_at = ?"  # noqa: S608
                " WHERE upload_id = ?",
                (state, _stamp(at), upload_id),
            )
            if cursor.rowcount != 1:
                raise LedgerError(f"upload {upload_id} is not in the ledger")
            if outcome is not None:
                db.execute(
                    "UPDATE uploads SET outcome = ?, finding_codes = ?"
                    " WHERE upload_id = ?",
                    (outcome, ",".join(finding_codes or []), upload_id),
                )

    def claim_hash(self, upload_id: str, size: int, sha256: str) -> str | None:
        """Record the claimed upload's size and hash; the owner's id if taken.

        Moves the upload to :attr:`State.CLAIMED`. Returns None when this upload
        owns the hash (also on a redo), or the upload id of the earlier upload
        with the same SHA-256.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT upload_id FROM uploads WHERE sha256_owner = ?", (sha256,)
            ).fetchone()
            owner = str(row[0]) if row else None
            mine = owner in (None, upload_id)
            db.execute(
                "UPDATE uploads SET size = ?, sha256 = ?, sha256_owner = ?,"
                " state = ?, claimed_at = ? WHERE upload_id = ?",
                (
                    size,
                    sha256,
                    sha256 if mine else None,
                    State.CLAIMED,
                    _stamp(None),
                    upload_id,
                ),
            )
        return None if mine else owner

    def release_hash(self, upload_id: str) -> None:
        """Let the same file be uploaded again (after an internal error)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE uploads SET sha256_owner = NULL WHERE upload_id = ?",
                (upload_id,),
            )

    def validated(
        self,
        upload_id: str,
        message_id: str | None,
        *,
        reserve: bool,
        decrypted_at: datetime | None = None,
    ) -> str | None:
        """Record validation and the message id; the owning account if taken.

        Moves the upload to :attr:`State.VALIDATED`. With *reserve* (a valid
        report) the message id is claimed for this upload: None is returned
        when it owns it (also on a redo), else the account of the earlier
        upload that carried the same message id, which keeps it.
        *decrypted_at*, when given, stamps the decryption in the same
        transaction: a commit waits for the disk, and a crash between the two
        steps is redone from the claim either way.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT upload_id, account FROM uploads WHERE message_owner = ?",
                (message_id,),
            ).fetchone()
            taken = row is not None and row[0] != upload_id
            owned = message_id if reserve and not taken else None
            db.execute(
                "UPDATE uploads SET message_id = ?, message_owner = ?, state = ?,"
                " validated_at = ?, decrypted_at = COALESCE(?, decrypted_at)"
                " WHERE upload_id = ?",
                (
                    message_id,
                    owned,
                    State.VALIDATED,
                    _stamp(None),
                    decrypted_at and _stamp(decrypted_at),
                    upload_id,
                ),
            )
        return str(row[1]) if reserve and taken and row else None

    def get(self, upload_id: str) -> Upload | None:
        """The upload with this id, if any."""
        rows = self._query(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?",  # noqa: S608
            upload_id,
        )
        return _upload(rows[0]) if rows else None

    def unfinished(self) -> list[Upload]:
        """Every upload not yet done, oldest first."""
        rows = self._query(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads"  # noqa: S608
            " WHERE state NOT IN (?, ?) ORDER BY upload_id",
            *sorted(FINAL_STATES),
        )
        return [_upload(row) for row in rows]

    def uploads(self) -> list[Upload]:
        """Every upload, oldest first."""
        rows = self._query(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads ORDER BY upload_id"  # noqa: S608
        )
        return [_upload(row) for row in rows]

    # Outbox files

    def record_routed(
        self, upload_id: str, written: list[Written], at: datetime | None = None
    ) -> None:
        """Record outbox files written for an upload, and the routed state.

        A file rewritten by a redo replaces its earlier row.
        """
        stamp = _stamp(at)
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO deliveries (account, file_name, upload_id, municipality,"
                " size, sha256, record_count, written_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account, file_name) DO UPDATE SET"
                " upload_id = excluded.upload_id,"
                " municipality = excluded.municipality, size = excluded.size,"
                " sha256 = excluded.sha256, record_count = excluded.record_count,"
                " written_at = excluded.written_at",
                [
                    (
                        w.account,
                        w.file_name,
                        upload_id,
                        w.municipality,
                        w.size,
                        w.sha256,
                        w.record_count,
                        stamp,
                    )
                    for w in written
                ],
            )
            db.execute(
                "UPDATE uploads SET state = ?, routed_at = ? WHERE upload_id = ?",
                (State.ROUTED, stamp, upload_id),
            )

    def written_files(self, upload_id: str) -> set[tuple[str, str]]:
        """The (account, file name) of every outbox file written for an upload."""
        rows = self._query(
            "SELECT account, file_name FROM deliveries WHERE upload_id = ?", upload_id
        )
        return {(str(account), str(name)) for account, name in rows}

    def withdraw(self, account: str, file_name: str) -> None:
        """Forget an outbox file the gateway took back before it was fetched."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM deliveries WHERE account = ? AND file_name = ?"
                " AND downloaded_at IS NULL",
                (account, file_name),
            )

    def record_delivery(
        self, account: str, file_name: str, event: str, at: datetime
    ) -> None:
        """Record that a municipality downloaded or removed an outbox file."""
        column = f"{DeliveryEvent(event).value}_at"
        with self._transaction() as db:
            db.execute(
                "INSERT INTO deliveries (account, file_name) VALUES (?, ?)"
                " ON CONFLICT (account, file_name) DO NOTHING",
                (account, file_name),
            )
            db.execute(
                f"UPDATE deliveries SET {column} = COALESCE({column}, ?)"  # noqa: S608
                " WHERE account = ? AND file_name = ?",
                (_stamp(at), account, file_name),
            )

    def was_downloaded(self, account: str, file_name: str) -> bool:
        """True once the municipality has downloaded this outbox file."""
        rows = self._query(
            "SELECT downloaded_at FROM deliveries WHERE account = ? AND file_name = ?",
            account,
            file_name,
        )
        return bool(rows and rows[0][0])

    def undelivered(self, older_than: datetime) -> list[Delivery]:
        """Outbox files written before *older_than* and never downloaded."""
        rows = self._query(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608
            " WHERE downloaded_at IS NULL AND removed_at IS NULL"
            " AND written_at IS NOT NULL AND written_at < ?"
            " ORDER BY written_at",
            _stamp(older_than),
        )
        return [_delivery(row) for row in rows]

    def deliveries(self) -> list[Delivery]:
        """Every outbox file the ledger knows, by account and name."""
        rows = self._query(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608
            " ORDER BY account, file_name"
        )
        return [_delivery(row) for row in rows]


def _upload(row: tuple[object, ...]) -> Upload:
    upload_id, account, file_name, state, size, sha256, message_id = row[:7]
    outcome, codes, received_at = row[7:]
    return Upload(
        upload_id=str(upload_id),
        account=str(account),
        file_name=str(file_name),
        state=State(str(state)),
        size=int(str(size)) if size is not None else None,
        sha256=str(sha256) if sha256 is not None else None,
        message_id=str(message_id) if message_id is not None else None,
        outcome=Outcome(str(outcome)) if outcome is not None else None,
        finding_codes=tuple(c for c in str(codes).split(",") if c),
        received_at=datetime.fromisoformat(str(received_at)),
    )


def _delivery(row: tuple[object, ...]) -> Delivery:
    account, file_name, upload_id, municipality = row[:4]
    return Delivery(
        account=str(account),
        file_name=str(file_name),
        upload_id=str(upload_id) if upload_id is not None else None,
        municipality=str(municipality) if municipality is not None else None,
        written_at=_time(_text(row[4])),
        downloaded_at=_time(_text(row[5])),
        removed_at=_time(_text(row[6])),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
