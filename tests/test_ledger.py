"""Tests of the SQLite ledger."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import LedgerError
from gateway.ledger import Ledger, Outcome, State, Written, new_upload_id

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A fresh ledger in a temporary folder."""
    opened = Ledger(tmp_path / "state" / "ledger.sqlite3")
    yield opened
    opened.close()


def test_claim_records_the_upload_and_each_step(ledger: Ledger) -> None:
    """A claimed upload moves through its states and keeps its facts."""
    ledger.begin_claim("u1", "uitzender-noord", "week10.xml.gpg", NOW)

    assert ledger.claim_hash("u1", 1234, "ab" * 32) is None
    ledger.set_state("u1", State.DECRYPTED)
    ledger.set_state(
        "u1", State.RECEIPTED, outcome=Outcome.ACCEPTED, finding_codes=["PERIOD-LONG"]
    )

    upload = ledger.get("u1")
    assert upload is not None
    assert upload.state == State.RECEIPTED
    assert (upload.size, upload.sha256) == (1234, "ab" * 32)
    assert upload.outcome == Outcome.ACCEPTED
    assert upload.finding_codes == ("PERIOD-LONG",)
    assert upload.received_at == NOW


def test_wal_mode_and_private_file(ledger: Ledger) -> None:
    """The database runs in WAL mode and only its owner can read it."""
    with sqlite3.connect(ledger.path) as db:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]

    assert mode == "wal"
    assert ledger.path.stat().st_mode & 0o777 == 0o600


def test_same_hash_is_a_duplicate_but_a_redo_is_not(ledger: Ledger) -> None:
    """The second upload of the same bytes learns who had them first."""
    for upload_id in ("u1", "u2"):
        ledger.begin_claim(upload_id, "uitzender-noord", "a.gpg", NOW)

    assert ledger.claim_hash("u1", 10, "cd" * 32) is None
    assert ledger.claim_hash("u1", 10, "cd" * 32) is None
    assert ledger.claim_hash("u2", 10, "cd" * 32) == "u1"


def test_released_hash_may_come_again(ledger: Ledger) -> None:
    """After an internal error the same file may be uploaded once more."""
    for upload_id in ("u1", "u2"):
        ledger.begin_claim(upload_id, "uitzender-noord", "a.gpg", NOW)
    ledger.claim_hash("u1", 10, "cd" * 32)

    ledger.release_hash("u1")

    assert ledger.claim_hash("u2", 10, "cd" * 32) is None


def test_message_id_owner_is_reported_with_its_account(ledger: Ledger) -> None:
    """A message id already used names the account that used it."""
    ledger.begin_claim("u1", "uitzender-noord", "a.gpg", NOW)
    ledger.begin_claim("u2", "flexwerk-zuid", "b.gpg", NOW)
    message_id = "0b8f5a3e-58a4-4c3e-9d43-1d1b4f2b6a10"

    assert ledger.validated("u1", message_id, reserve=True) is None
    assert ledger.validated("u1", message_id, reserve=True) is None
    assert ledger.validated("u2", message_id, reserve=True) == "uitzender-noord"
    assert ledger.get("u2").message_id == message_id  # type: ignore[union-attr]


def test_invalid_report_does_not_reserve_its_message_id(ledger: Ledger) -> None:
    """A rejected report's message id stays free for the corrected report."""
    ledger.begin_claim("u1", "uitzender-noord", "a.gpg", NOW)
    ledger.begin_claim("u2", "uitzender-noord", "b.gpg", NOW)
    message_id = "0b8f5a3e-58a4-4c3e-9d43-1d1b4f2b6a10"

    assert ledger.validated("u1", message_id, reserve=False) is None

    assert ledger.validated("u2", message_id, reserve=True) is None


def test_racing_claims_of_one_hash_have_one_winner(ledger: Ledger) -> None:
    """Of many threads claiming the same hash at once, exactly one owns it."""
    ids = [f"u{n}" for n in range(16)]
    for upload_id in ids:
        ledger.begin_claim(upload_id, "uitzender-noord", "a.gpg", NOW)
    owners: list[str | None] = []
    barrier = threading.Barrier(len(ids))

    def claim(upload_id: str) -> None:
        barrier.wait()
        owners.append(ledger.claim_hash(upload_id, 1, "ee" * 32))

    threads = [threading.Thread(target=claim, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert owners.count(None) == 1


def test_unfinished_lists_only_open_uploads(ledger: Ledger) -> None:
    """Done and vanished uploads need no recovery; every other state does."""
    for upload_id in ("u1", "u2", "u3"):
        ledger.begin_claim(upload_id, "uitzender-noord", f"{upload_id}.gpg", NOW)
    ledger.set_state("u1", State.DONE)
    ledger.set_state("u2", State.VANISHED)

    assert [u.upload_id for u in ledger.unfinished()] == ["u3"]


def test_unknown_upload_cannot_change_state(ledger: Ledger) -> None:
    """Moving an upload the ledger never saw is an error, not a silent no-op."""
    with pytest.raises(LedgerError):
        ledger.set_state("missing", State.CLAIMED)


def _written(account: str, name: str) -> Written:
    return Written(account, name, "GM0599", 100, "ff" * 32, 3)


def test_deliveries_track_download_and_overdue(ledger: Ledger) -> None:
    """Written outbox files are overdue until downloaded."""
    ledger.begin_claim("u1", "uitzender-noord", "a.gpg", NOW)
    ledger.record_routed(
        "u1",
        [
            _written("rotterdam", name)
            for name in ("m1.GM0599.xml.gpg", "m2.GM0599.xml.gpg")
        ],
        at=NOW,
    )

    ledger.record_delivery("rotterdam", "m1.GM0599.xml.gpg", "downloaded", NOW)

    assert ledger.was_downloaded("rotterdam", "m1.GM0599.xml.gpg")
    assert not ledger.was_downloaded("rotterdam", "m2.GM0599.xml.gpg")
    overdue = ledger.undelivered(NOW + timedelta(hours=25))
    assert [d.file_name for d in overdue] == ["m2.GM0599.xml.gpg"]
    assert ledger.undelivered(NOW - timedelta(hours=1)) == []
    assert ledger.written_files("u1") == {
        ("rotterdam", "m1.GM0599.xml.gpg"),
        ("rotterdam", "m2.GM0599.xml.gpg"),
    }


def test_removed_file_is_no_longer_overdue(ledger: Ledger) -> None:
    """A file the municipality removed without download is not overdue."""
    ledger.begin_claim("u1", "uitzender-noord", "a.gpg", NOW)
    ledger.record_routed("u1", [_written("utrecht", "m.GM0344.xml.gpg")], at=NOW)

    ledger.record_delivery("utrecht", "m.GM0344.xml.gpg", "removed", NOW)

    assert ledger.undelivered(NOW + timedelta(days=3)) == []


def test_delivery_event_for_an_unknown_file_is_kept(ledger: Ledger) -> None:
    """A download of a file the ledger never wrote is still recorded."""
    ledger.record_delivery("utrecht", "stray.gpg", "downloaded", NOW)

    assert ledger.was_downloaded("utrecht", "stray.gpg")


def test_unknown_delivery_event_is_refused(ledger: Ledger) -> None:
    """Only 'downloaded' and 'removed' are delivery events."""
    with pytest.raises(ValueError):
        ledger.record_delivery("utrecht", "x.gpg", "opened", NOW)


def test_ledger_survives_reopening(tmp_path: Path) -> None:
    """What one process committed, the next one reads."""
    path = tmp_path / "ledger.sqlite3"
    first = Ledger(path)
    first.begin_claim("u1", "uitzender-noord", "a.gpg", NOW)
    first.close()

    second = Ledger(path)

    assert second.get("u1") is not None
    second.close()


def test_upload_ids_sort_by_time() -> None:
    """Upload ids begin with their time, so sorting them sorts by arrival."""
    early = new_upload_id(NOW)
    late = new_upload_id(NOW + timedelta(seconds=1))

    assert early < late
    assert early.startswith("20260302T093000Z-")


def test_withdrawn_file_is_forgotten_unless_downloaded(ledger: Ledger) -> None:
    """A file taken back before download leaves no delivery row behind."""
    ledger.begin_claim("u1", "uitzender-noord", "a.gpg", NOW)
    ledger.record_routed(
        "u1", [_written("rotterdam", "a.xml.gpg"), _written("rotterdam", "b.xml.gpg")]
    )
    ledger.record_delivery("rotterdam", "b.xml.gpg", "downloaded", NOW)

    ledger.withdraw("rotterdam", "a.xml.gpg")
    ledger.withdraw("rotterdam", "b.xml.gpg")

    assert ledger.written_files("u1") == {("rotterdam", "b.xml.gpg")}


def test_validation_stamps_the_decryption_in_the_same_commit(
    ledger: Ledger, tmp_path: Path
) -> None:
    """validated() with decrypted_at records both steps' times at once."""
    ledger.begin_claim("u1", "uitzender-noord", "a.gpg", NOW)
    decrypted = NOW + timedelta(seconds=2)

    ledger.validated("u1", "m-1", reserve=True, decrypted_at=decrypted)

    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite3") as db:
        row = db.execute(
            "SELECT state, decrypted_at, validated_at FROM uploads"
            " WHERE upload_id = 'u1'"
        ).fetchone()
    assert row[0] == State.VALIDATED
    assert datetime.fromisoformat(row[1]) == decrypted
    assert row[2] is not None
