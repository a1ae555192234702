"""Tests of the retention job: expiry per kind, delivered vs. waiting outbox files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.audit import MemoryAudit
from gateway.config import Config
from gateway.ledger import Ledger
from gateway.retention import RetentionJob
from gateway.spool import Spool
from tests.support.audit import Keys, audit_keys, write_config

__all__ = ["audit_keys"]

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path, audit_keys: Keys) -> Config:
    """Default retention: archive 90, rejected 30, receipts 30, delivered 7 days."""
    return write_config(tmp_path / "gw", audit_keys)


@pytest.fixture
def ledger(config: Config) -> Iterator[Ledger]:
    """The real SQLite ledger of the configuration."""
    ledger = Ledger(config.ledger_path)
    yield ledger
    ledger.close()


def _file(folder: Path, name: str, age: timedelta) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"sealed")
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_expired_files_of_each_kind_are_purged_and_logged(
    config: Config, ledger: Ledger
) -> None:
    """Files past their kind's days go; younger ones stay; each purge is audited."""
    spool = Spool(config.gateway.spool)
    old_archive = _file(spool.archive("uitzender-noord"), "a.gpg", timedelta(days=91))
    new_archive = _file(spool.archive("uitzender-noord"), "b.gpg", timedelta(days=89))
    old_rejected = _file(spool.rejected("flexwerk-zuid"), "c.gpg", timedelta(days=31))
    old_receipt = _file(
        spool.receipts("flexwerk-zuid"),
        "c.gpg.receipt.asc",
        timedelta(days=30, hours=1),
    )
    audit = MemoryAudit()

    purged = RetentionJob(config, audit, ledger).run_once(NOW)

    assert purged == 3
    assert (
        not old_archive.exists()
        and not old_rejected.exists()
        and not old_receipt.exists()
    )
    assert new_archive.exists()
    kinds = {
        (e["kind"], e["account"], e["file"], e["age_days"])
        for e in audit.named("retention.purged")
    }
    assert kinds == {
        ("archive", "uitzender-noord", "a.gpg", 91),
        ("rejected", "flexwerk-zuid", "c.gpg", 31),
        ("receipts", "flexwerk-zuid", "c.gpg.receipt.asc", 30),
    }


def test_downloaded_outbox_files_are_purged_days_after_the_download(
    config: Config, ledger: Ledger
) -> None:
    """An outbox file goes delivered_days after its download, not its writing."""
    outbox = Spool(config.gateway.spool).outbox("rotterdam")
    fetched = _file(outbox, "m1.GM0599.xml.gpg", timedelta(days=9))
    late = _file(outbox, "m2.GM0599.xml.gpg", timedelta(days=30))
    ledger.record_delivery(
        "rotterdam", fetched.name, "downloaded", NOW - timedelta(days=8)
    )
    ledger.record_delivery(
        "rotterdam", late.name, "downloaded", NOW - timedelta(days=2)
    )
    audit = MemoryAudit()

    purged = RetentionJob(config, audit, ledger).run_once(NOW)

    assert purged == 1
    assert not fetched.exists() and late.exists()
    assert audit.named("retention.purged")[0]["kind"] == "delivered"


def test_undelivered_outbox_files_are_kept_and_warned_about_once(
    config: Config, ledger: Ledger
) -> None:
    """A file never downloaded stays, and is reported overdue once per period."""
    outbox = Spool(config.gateway.spool).outbox("utrecht")
    waiting = _file(outbox, "m3.GM0344.xml.gpg", timedelta(days=60))
    young = _file(outbox, "m4.GM0344.xml.gpg", timedelta(hours=20))
    audit = MemoryAudit()
    job = RetentionJob(config, audit, ledger)

    first = job.run_once(NOW)
    job.run_once(NOW + timedelta(hours=1))
    RetentionJob(config, audit, ledger).run_once(NOW + timedelta(hours=2))

    assert first == 0
    assert waiting.exists() and young.exists()
    overdue = audit.named("delivery.overdue")
    assert overdue == [
        {
            "event": "delivery.overdue",
            "account": "utrecht",
            "file": waiting.name,
            "age_hours": 60 * 24,
        }
    ]


def test_overdue_warnings_repeat_each_period(config: Config, ledger: Ledger) -> None:
    """After another pickup_warning_hours the file is reported again."""
    outbox = Spool(config.gateway.spool).outbox("utrecht")
    _file(outbox, "m5.GM0344.xml.gpg", timedelta(hours=25))
    audit = MemoryAudit()
    job = RetentionJob(config, audit, ledger)

    job.run_once(NOW)
    job.run_once(NOW + timedelta(hours=12))
    job.run_once(NOW + timedelta(hours=24))

    assert [e["age_hours"] for e in audit.named("delivery.overdue")] == [25, 49]


@pytest.mark.parametrize(
    "name",
    [
        ".m6.GM0599.xml.gpg.x1",  # hidden: a file still being written
        "m7.GM0599.xml.gpg.part",  # a client's temporary upload name
    ],
)
def test_files_being_written_are_left_alone(
    config: Config, ledger: Ledger, name: str
) -> None:
    """Temporary and hidden names are neither purged nor reported."""
    outbox = Spool(config.gateway.spool).outbox("rotterdam")
    path = _file(outbox, name, timedelta(days=400))
    ledger.record_delivery("rotterdam", name, "downloaded", NOW - timedelta(days=300))
    audit = MemoryAudit()

    RetentionJob(config, audit, ledger).run_once(NOW)

    assert path.exists()
    assert audit.events == []


def test_abandoned_temporary_uploads_are_purged_and_slots_left_alone(
    config: Config, ledger: Ledger
) -> None:
    """A never-renamed .filepart goes after 7 days; upload slots and new ones stay."""
    inbox = Spool(config.gateway.spool).inbox("uitzender-noord")
    abandoned = _file(inbox, "week.xml.gpg.filepart", timedelta(days=8))
    recent = _file(inbox, "next.xml.gpg.filepart", timedelta(days=6))
    slot = _file(inbox, ".upload-0f8fad5b", timedelta(days=400))
    audit = MemoryAudit()

    purged = RetentionJob(config, audit, ledger).run_once(NOW)

    assert purged == 1
    assert not abandoned.exists()
    assert recent.exists()
    assert slot.exists()
    assert [(e["event"], e["kind"]) for e in audit.events] == [
        ("retention.purged", "abandoned-upload")
    ]


def test_complete_uploads_waiting_in_the_inbox_are_never_purged(
    config: Config, ledger: Ledger
) -> None:
    """An inbox file under its final name is the daemon's to process, however old."""
    inbox = Spool(config.gateway.spool).inbox("uitzender-noord")
    waiting = _file(inbox, "week.xml.gpg", timedelta(days=400))

    RetentionJob(config, MemoryAudit(), ledger).run_once(NOW)

    assert waiting.exists()


def test_a_symlink_is_not_followed_or_removed(
    config: Config, ledger: Ledger, tmp_path: Path
) -> None:
    """A link planted in the archive neither removes its target nor itself."""
    target = _file(tmp_path / "elsewhere", "precious", timedelta(days=400))
    folder = Spool(config.gateway.spool).archive("uitzender-noord")
    folder.mkdir(parents=True)
    (folder / "link.gpg").symlink_to(target)

    purged = RetentionJob(config, MemoryAudit(), ledger).run_once(NOW)

    assert purged == 0
    assert target.exists()


def test_zero_days_keeps_forever(
    tmp_path: Path, audit_keys: Keys, ledger: Ledger
) -> None:
    """archive_days = 0 means the archive is never purged."""
    config = write_config(tmp_path / "gw", audit_keys)
    text = config.path.read_text() + "\n[retention]\narchive_days = 0\n"
    config.path.write_text(text)
    config = config_module.load(config.path)
    path = _file(
        Spool(config.gateway.spool).archive("uitzender-noord"),
        "a.gpg",
        timedelta(days=5000),
    )

    assert RetentionJob(config, MemoryAudit(), ledger).run_once(NOW) == 0
    assert path.exists()
