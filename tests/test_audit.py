"""Tests of the audit trail writer: chain, rotation, threads, recovery, seals."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditLog, MemoryAudit, read_events
from gateway.audit_tools import chain
from gateway.audit_tools.verify import verify
from gateway.config import Config
from gateway.errors import AuditError
from gateway.pgp import OpenPgp
from tests.support.audit import (
    START,
    Clock,
    Keys,
    audit_keys,
    open_log,
    pgp,
    write_config,
)

__all__ = ["audit_keys", "pgp"]


@pytest.fixture
def config(tmp_path: Path, audit_keys: Keys) -> Config:
    """A gateway configuration in a fresh folder."""
    return write_config(tmp_path / "gw", audit_keys)


def _lines(folder: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in chain.trail_files(folder)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def test_each_line_links_to_the_one_before(tmp_path: Path) -> None:
    """Every line carries seq, time, event, fields, prev and its own hash."""
    log = AuditLog(tmp_path)

    log.emit("upload.claimed", upload_id="u1", account="a", file="f", size=1)
    log.emit("message.decrypted", upload_id="u1", plaintext_size=2)
    log.close()

    first, second = _lines(tmp_path)
    assert set(first) == {"seq", "time", "event", "fields", "prev", "hash"}
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["prev"] == chain.GENESIS
    assert second["prev"] == first["hash"]
    assert first["hash"] == chain.line_hash(first)
    assert str(first["time"]).endswith("Z")


def test_lines_are_written_in_canonical_form(tmp_path: Path) -> None:
    """A stored line is exactly the canonical JSON of its record."""
    log = AuditLog(tmp_path)
    log.emit("x.y", b="é", a=["1"])
    log.close()

    raw = chain.trail_files(tmp_path)[0].read_bytes().rstrip(b"\n")

    assert raw == chain.canonical(json.loads(raw))


def test_fields_outside_the_vocabulary_types_are_refused(tmp_path: Path) -> None:
    """Floats, dicts and other objects cannot be emitted (nor leak through repr)."""
    log = AuditLog(tmp_path)

    for value in (1.5, {"a": 1}, [1, 2], b"x", object()):
        with pytest.raises(AuditError):
            log.emit("x.y", value=value)
    log.close()

    assert chain.trail_files(tmp_path) == []


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    """A new AuditLog on the same folder goes on from the last line."""
    first = AuditLog(tmp_path)
    first.emit("daemon.started")
    first.close()

    second = AuditLog(tmp_path)
    second.emit("daemon.started")
    second.close()

    lines = _lines(tmp_path)
    assert [line["seq"] for line in lines] == [1, 2]
    assert lines[1]["prev"] == lines[0]["hash"]


def test_files_rotate_daily_and_the_chain_crosses_them(tmp_path: Path) -> None:
    """The first line of a new day links to the last line of the day before."""
    clock = Clock(START, step=timedelta(hours=10))
    log = AuditLog(tmp_path, clock=clock)

    for _ in range(5):
        log.emit("session.opened", connection_id="c", account="a", remote="r")
    log.close()

    files = chain.trail_files(tmp_path)
    assert [p.name for p in files] == [
        "audit-2026-03-02.jsonl",
        "audit-2026-03-03.jsonl",
        "audit-2026-03-04.jsonl",
    ]
    lines = _lines(tmp_path)
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(lines))


def test_a_clock_stepping_back_does_not_break_time_order(tmp_path: Path) -> None:
    """When the system clock goes back, lines keep the last time written."""
    clock = Clock(START, step=timedelta(seconds=-5))
    log = AuditLog(tmp_path, clock=clock)

    log.emit("a.b")
    log.emit("a.b")
    log.close()

    times = [line["time"] for line in _lines(tmp_path)]
    assert times[0] == times[1]


def test_emit_is_safe_from_many_threads(tmp_path: Path, audit_keys: Keys) -> None:
    """Concurrent emitters produce one unbroken chain without lost lines."""
    log = AuditLog(tmp_path)

    def work(n: int) -> None:
        for i in range(200):
            log.emit("delivery.downloaded", account=f"t{n}", file=str(i), size=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()

    lines = _lines(tmp_path)
    assert [line["seq"] for line in lines] == list(range(1, 1601))
    with OpenPgp(audit_keys.home) as adapter:
        assert verify(tmp_path, adapter, audit_keys.gateway, settle_seconds=0).clean


def test_a_torn_last_line_is_kept_and_recorded(
    tmp_path: Path, audit_keys: Keys
) -> None:
    """After a crash mid-write the torn bytes stay and audit.recovered names them."""
    log = AuditLog(tmp_path)
    log.emit("a.b", n=1)
    log.emit("a.b", n=2)
    log.close()
    path = chain.trail_files(tmp_path)[0]
    good = path.read_bytes()
    torn = b'{"event":"a.b","fields":{"n":3},"ha'
    path.write_bytes(good + torn)

    log = AuditLog(tmp_path)
    log.emit("a.b", n=4)
    log.close()

    data = path.read_bytes()
    assert data.startswith(good + torn + b"\n")
    recovered = json.loads(data.splitlines()[3])
    assert recovered["event"] == "audit.recovered"
    assert recovered["seq"] == 3
    assert recovered["fields"]["offset"] == len(good)
    assert recovered["fields"]["file"] == path.name
    with OpenPgp(audit_keys.home) as adapter:
        verdict = verify(tmp_path, adapter, audit_keys.gateway, settle_seconds=0)
    assert verdict.clean, verdict.problems
    assert "torn line" in verdict.notes[0]


def test_a_new_days_file_holding_only_a_torn_line_is_recovered(
    tmp_path: Path, audit_keys: Keys
) -> None:
    """A crash during a day's very first write resumes from the day before."""
    clock = Clock(START)
    log = AuditLog(tmp_path, clock=clock)
    log.emit("a.b", n=1)
    log.close()
    clock.now += timedelta(days=1)
    fresh = tmp_path / chain.file_name(clock.now.date())
    fresh.write_bytes(b'{"event":"a.')

    log = AuditLog(tmp_path, clock=clock)
    log.emit("a.b", n=2)
    log.close()

    lines = fresh.read_bytes().splitlines()
    assert lines[0] == b'{"event":"a.'
    assert json.loads(lines[1])["event"] == "audit.recovered"
    assert json.loads(lines[1])["seq"] == 2
    with OpenPgp(audit_keys.home) as adapter:
        verdict = verify(tmp_path, adapter, audit_keys.gateway, settle_seconds=0)
    assert verdict.clean, verdict.problems


def test_a_whole_last_line_without_newline_is_completed(tmp_path: Path) -> None:
    """A crash between a line and its newline loses nothing and needs no record."""
    log = AuditLog(tmp_path)
    log.emit("a.b", n=1)
    log.close()
    path = chain.trail_files(tmp_path)[0]
    path.write_bytes(path.read_bytes().rstrip(b"\n"))

    log = AuditLog(tmp_path)
    log.emit("a.b", n=2)
    log.close()

    assert [line["seq"] for line in _lines(tmp_path)] == [1, 2]
    assert [e["event"] for e in read_events(tmp_path)] == ["a.b", "a.b"]


def test_checkpoints_are_signed_and_copied(config: Config, pgp: OpenPgp) -> None:
    """A checkpoint names the checkpoint.written line and is copied off-site."""
    log = open_log(config, pgp, Clock(START))
    log.emit("daemon.started")

    written = log.checkpoint()
    log.close()

    assert written is not None
    content, signer = pgp.verify(written.read_bytes())
    assert signer == config.gateway.key_fingerprint
    point = json.loads(content)
    line = _lines(config.audit.dir)[point["seq"] - 1]
    assert line["event"] == "checkpoint.written"
    assert point["hash"] == line["hash"]
    assert config.audit.checkpoint_copy_dir is not None
    copy = config.audit.checkpoint_copy_dir / written.name
    assert copy.read_bytes() == written.read_bytes()


def test_close_seals_the_end_and_idle_checkpoints_are_skipped(
    config: Config, pgp: OpenPgp
) -> None:
    """close() writes a final checkpoint; nothing new means no new checkpoint."""
    log = open_log(config, pgp, Clock(START))
    log.emit("daemon.started")
    assert log.checkpoint() is not None

    assert log.checkpoint() is None
    log.emit("daemon.stopped")
    log.close()

    lines = _lines(config.audit.dir)
    assert lines[-1]["event"] == "checkpoint.written"
    names = sorted(p.name for p in (config.audit.dir / "checkpoints").iterdir())
    assert names == ["checkpoint-000000000002.asc", "checkpoint-000000000004.asc"]


def test_a_failed_checkpoint_is_recorded_not_hidden(
    config: Config, pgp: OpenPgp, tmp_path: Path
) -> None:
    """When a checkpoint cannot be stored, checkpoint.failed says so in the trail."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the copy folder should be")
    log = AuditLog(
        config.audit.dir,
        signer=pgp,
        key_fingerprint=config.gateway.key_fingerprint,
        checkpoint_copy_dir=blocked,
    )
    log.emit("daemon.started")

    assert log.checkpoint() is None
    log.close()

    events = read_events(config.audit.dir)
    assert [e["event"] for e in events][:3] == [
        "daemon.started",
        "checkpoint.written",
        "checkpoint.failed",
    ]
    assert events[2]["seq"] == 2
    verdict = verify(
        config.audit.dir, pgp, config.gateway.key_fingerprint, settle_seconds=0
    )
    assert verdict.clean, verdict.problems


def test_the_timer_writes_checkpoints(config: Config, pgp: OpenPgp) -> None:
    """With an interval set, checkpoints appear without being asked for."""
    log = AuditLog(
        config.audit.dir,
        signer=pgp,
        key_fingerprint=config.gateway.key_fingerprint,
        checkpoint_interval=0.05,
    )
    log.emit("daemon.started")
    folder = config.audit.dir / "checkpoints"

    deadline = time.monotonic() + 30
    while not (folder.is_dir() and any(folder.iterdir())):
        assert time.monotonic() < deadline, "no checkpoint within 30 s"
        time.sleep(0.02)
    log.close()

    assert any(
        e["event"] == "checkpoint.written" for e in read_events(config.audit.dir)
    )


def test_open_builds_the_configured_trail(config: Config, pgp: OpenPgp) -> None:
    """AuditLog.open takes the folder, key and copy folder from the config."""
    log = AuditLog.open(config, pgp)
    log.emit("daemon.started")
    log.close()

    assert config.audit.checkpoint_copy_dir is not None
    assert list(config.audit.checkpoint_copy_dir.glob("checkpoint-*.asc"))
    verdict = verify(
        config.audit.dir, pgp, config.gateway.key_fingerprint, settle_seconds=0
    )
    assert verdict.clean and verdict.checkpoints == 1


def test_emit_after_close_is_refused(tmp_path: Path) -> None:
    """A closed trail cannot be appended to by accident."""
    log = AuditLog(tmp_path)
    log.close()

    with pytest.raises(AuditError):
        log.emit("a.b")


def test_files_are_private(tmp_path: Path) -> None:
    """The trail's folder and files are readable by the gateway user only."""
    log = AuditLog(tmp_path / "audit")
    log.emit("a.b")
    log.close()

    assert (tmp_path / "audit").stat().st_mode & 0o077 == 0
    assert log.path.stat().st_mode & 0o777 == 0o600


def test_memory_audit_keeps_events_by_name() -> None:
    """MemoryAudit remembers events and finds them by name."""
    audit = MemoryAudit()

    audit.emit("a.b", n=1)
    audit.emit("c.d")

    assert audit.named("a.b") == [{"event": "a.b", "n": 1}]
    assert len(audit.events) == 2
