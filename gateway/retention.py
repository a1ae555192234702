"""Retention: spool files are kept only as long as they are needed.

The daemon runs :meth:`RetentionJob.run_once` periodically. Each kind of file
has its own period in ``[retention]`` (0 keeps that kind forever), counted from
the file's modification time, which is when the gateway wrote or archived it:

- ``archive/<intermediary>/``: accepted uploads as received (``archive_days``);
- ``rejected/<intermediary>/``: rejected uploads as received (``rejected_days``);
- ``receipts/<intermediary>/``: receipts (``receipts_days``);
- ``outbox/<municipality>/``: outbox files the municipality downloaded
  (``delivered_days``, counted from the download the ledger recorded);
- ``inbox/<intermediary>/``: uploads left under a client's temporary name
  (``name.filepart``, ``.part``, ``.tmp``, ``.partial``) that the client never
  renamed to the final name (``abandoned_upload_days``, counted from the last
  write). The gateway never processes such a file: the client gave up on it.

An outbox file that was never downloaded is never purged: it raises a
``delivery.overdue`` audit event once it is ``pickup_warning_hours`` old, and
again each time it has waited that long once more. How many warnings each file
has had is kept in ``retention-overdue.json`` in the state folder, so a restart
does not repeat them. Every purge is an audit event, ``retention.purged``.

Only the folders of configured partners are looked at; hidden names (the SFTP
service's own upload slots), temporary names outside the inbox and anything
that is not a regular file are left alone.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gateway import logs
from gateway.audit import AuditSink
from gateway.config import Config
from gateway.spool import Spool, is_temporary_name, write_atomically

_log = logs.get("retention")
_DAY = 86400.0
_HOUR = 3600.0


class DeliveryFacts(Protocol):
    """What the ledger knows about one outbox file."""

    @property
    def account(self) -> str:
        """The municipality's account id."""

    @property
    def file_name(self) -> str:
        """The outbox file's name."""

    @property
    def downloaded_at(self) -> datetime | None:
        """When the municipality first downloaded it, if it did."""


class DeliveryLedger(Protocol):
    """The part of the ledger retention needs."""

    def deliveries(self) -> Sequence[DeliveryFacts]:
        """Every outbox file the ledger knows."""
        ...


@dataclass(frozen=True)
class _Aged:
    """A spool file and how old it is, in seconds."""

    account: str
    path: Path
    age: float


def _aged_files(
    folder: Path, account: str, now: datetime, *, temporary: bool = False
) -> Iterator[_Aged]:
    """Regular files in *folder* with their age at *now*.

    Complete files, or with *temporary* only those under a client's temporary
    upload name. Hidden names are never listed.
    """
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(".") or is_temporary_name(entry.name) != temporary:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            age = now.timestamp() - info.st_mtime
            yield _Aged(account, Path(entry.path), age)


class RetentionJob:
    """Purges expired spool files and warns about outbox files not picked up."""

    def __init__(
        self, config: Config, audit: AuditSink, ledger: DeliveryLedger
    ) -> None:
        self.config = config
        self.audit = audit
        self.ledger = ledger
        self.spool = Spool(config.gateway.spool)
        self.state_path = config.gateway.state_dir / "retention-overdue.json"

    def run_once(self, now: datetime) -> int:
        """One pass over the spool at *now*; returns how many files were purged."""
        retention = self.config.retention
        senders = list(self.config.intermediaries)
        purged = 0
        # Kind, folder, days, and whether it holds uploads left under a
        # temporary name (the inbox) rather than complete files.
        for kind, folder, days, temporary in (
            ("archive", self.spool.archive, retention.archive_days, False),
            ("rejected", self.spool.rejected, retention.rejected_days, False),
            ("receipts", self.spool.receipts, retention.receipts_days, False),
            (
                "abandoned-upload",
                self.spool.inbox,
                retention.abandoned_upload_days,
                True,
            ),
        ):
            for account in senders:
                purged += self._purge_expired(
                    kind, folder(account), account, days, now, temporary=temporary
                )
        return purged + self._outboxes(now)

    def _purge_expired(
        self,
        kind: str,
        folder: Path,
        account: str,
        days: int,
        now: datetime,
        *,
        temporary: bool,
    ) -> int:
        if days == 0:
            return 0
        aged = _aged_files(folder, account, now, temporary=temporary)
        expired = [f for f in aged if f.age > days * _DAY]
        return sum(self._purge(kind, aged) for aged in expired)

    def _purge(self, kind: str, aged: _Aged) -> int:
        try:
            aged.path.unlink()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            _log.error(
                "retention.failed", kind=kind, account=aged.account, error=exc.strerror
            )
            return 0
        self.audit.emit(
            "retention.purged",
            kind=kind,
            account=aged.account,
            file=aged.path.name,
            age_days=int(aged.age // _DAY),
        )
        return 1

    def _outboxes(self, now: datetime) -> int:
        downloads = {
            (d.account, d.file_name): d.downloaded_at
            for d in self.ledger.deliveries()
            if d.downloaded_at is not None
        }
        warned = self._load_warnings()
        still_waiting: dict[str, int] = {}
        purged = 0
        for account in self.config.municipalities:
            for aged in _aged_files(self.spool.outbox(account), account, now):
                downloaded = downloads.get((account, aged.path.name))
                if downloaded is not None:
                    purged += self._purge_delivered(aged, downloaded, now)
                    continue
                key = f"{account}/{aged.path.name}"
                still_waiting[key] = self._warn(aged, warned.get(key, 0))
        waiting = {key: count for key, count in still_waiting.items() if count}
        if waiting != warned:
            self._save_warnings(waiting)
        return purged

    def _purge_delivered(self, aged: _Aged, downloaded: datetime, now: datetime) -> int:
        days = self.config.retention.delivered_days
        since = (now - downloaded).total_seconds()
        if days == 0 or since <= days * _DAY:
            return 0
        return self._purge("delivered", aged)

    def _warn(self, aged: _Aged, count: int) -> int:
        """Warn if *aged* waited another full period; returns the warnings so far."""
        hours = self.config.retention.pickup_warning_hours
        if hours == 0 or aged.age < hours * _HOUR * (count + 1):
            return count
        self.audit.emit(
            "delivery.overdue",
            account=aged.account,
            file=aged.path.name,
            age_hours=int(aged.age // _HOUR),
        )
        return int(aged.age // (hours * _HOUR))

    def _load_warnings(self) -> dict[str, int]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            _log.warning("retention.state_unreadable", file=self.state_path.name)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, int)}

    def _save_warnings(self, warned: dict[str, int]) -> None:
        self.state_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = json.dumps(warned, sort_keys=True, indent=0)
        write_atomically(self.state_path, text.encode("utf-8"))
