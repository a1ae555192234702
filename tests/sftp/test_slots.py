"""Upload slots: names flushed ahead, sealed small uploads, recovery after a crash."""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import threading
from pathlib import Path

import pytest

from gateway.audit import MemoryAudit
from gateway.sftp.kernel import start_writeback
from gateway.sftp.service import SftpService
from gateway.sftp.slots import (
    LEGACY_RECORD_ATTRIBUTE,
    NAME_IN_INODE,
    RECORD_ATTRIBUTE,
    SMALL_UPLOAD_BYTES,
    UPLOAD_PREFIX,
    SlotPool,
    recover,
    seal,
)
from gateway.spool import fsync_dir
from tests.support.sftp import start_server

ACCOUNT = "uitzender-noord"


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """An inbox under a spool root on a file system with user extended attributes."""
    folder = tmp_path / "spool" / "inbox" / ACCOUNT
    folder.mkdir(parents=True)
    probe = folder / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, RECORD_ATTRIBUTE, b"x")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("no user extended attributes on this file system")
        raise
    finally:
        probe.unlink()
    return folder


def spool_root(inbox: Path) -> Path:
    """The spool root above *inbox*."""
    return inbox.parent.parent


def sealed_slot(inbox: Path, name: str, content: bytes) -> Path:
    """A slot holding *content* sealed for *name*, as a crash right after the
    answer to the client's close would leave it (renamed in memory only)."""
    pool = SlotPool()
    slot = pool.take(inbox)
    os.pwrite(slot.fd, content, 0)
    assert seal(slot.fd, name, len(content))
    os.close(slot.fd)
    pool.drain()
    return slot.path


def slot_files(inbox: Path) -> list[str]:
    """Every slot (hidden upload name) in *inbox*."""
    return sorted(n for n in os.listdir(inbox) if n.startswith(UPLOAD_PREFIX))


def test_slots_come_from_batches_whose_names_are_flushed(inbox: Path) -> None:
    """Slots are empty hidden files made a batch at a time; unused ones go at drain."""
    pool = SlotPool(batch=4)

    slots = [pool.take(inbox) for _ in range(9)]
    for slot in slots:
        os.close(slot.fd)

    assert all(s.named_on_disk for s in slots)
    assert all(s.path.parent.name == ACCOUNT for s in slots)
    assert all(s.path.name.startswith(".upload-") for s in slots)
    assert len({s.path for s in slots}) == 9
    pool.drain()
    assert sorted(s.path.name for s in slots) == slot_files(inbox)


def test_slots_made_in_the_background_are_flushed_before_use(inbox: Path) -> None:
    """Each slot of a background batch gets its first flush before any upload
    can take it, so that the flush at its close writes only its own inode."""
    flushed: list[int] = []
    batch_flushed = threading.Event()

    def flush_file(fd: int) -> None:
        os.fsync(fd)
        flushed.append(os.fstat(fd).st_ino)
        if len(flushed) == 4:
            batch_flushed.set()

    pool = SlotPool(batch=4, flush_file=flush_file)
    first = [pool.take(inbox) for _ in range(2)]  # the second asks for a batch
    assert batch_flushed.wait(30)
    later = [pool.take(inbox) for _ in range(4)]

    assert not {os.fstat(s.fd).st_ino for s in first} & set(flushed)
    assert {os.fstat(s.fd).st_ino for s in later} <= set(flushed)
    assert all(os.fstat(s.fd).st_size == 0 for s in first + later)
    for slot in first + later:
        os.close(slot.fd)
    pool.drain()


def test_a_slot_that_is_not_as_made_is_not_used(inbox: Path) -> None:
    """A ready slot that gained content is passed over for a new hidden file."""
    pool = SlotPool(batch=2, refill_at=-1)
    first = pool.take(inbox)
    os.close(first.fd)
    spare = next(p for p in pool.folder(inbox).iterdir() if p != first.path)
    spare.write_bytes(b"planted")

    second = pool.take(inbox)
    os.close(second.fd)

    assert second.path != spare
    assert second.named_on_disk is False
    assert second.path.parent == inbox


def test_seal_leaves_large_uploads_to_the_plain_way(inbox: Path) -> None:
    """An upload above the small size gets no record and no flush from seal."""
    slot = SlotPool(refill_at=-1).take(inbox)
    os.ftruncate(slot.fd, SMALL_UPLOAD_BYTES + 1)

    assert seal(slot.fd, "large.gpg", SMALL_UPLOAD_BYTES + 1) is False
    assert RECORD_ATTRIBUTE not in os.listxattr(slot.fd)
    os.close(slot.fd)


def test_recovery_publishes_a_sealed_upload_whose_rename_was_lost(inbox: Path) -> None:
    """A sealed slot is renamed to its recorded name in the inbox at recovery."""
    content = os.urandom(4096)
    sealed_slot(inbox, "week-12.xml.gpg", content)

    published = recover([inbox])

    assert published == ["week-12.xml.gpg"]
    assert (inbox / "week-12.xml.gpg").read_bytes() == content
    assert slot_files(inbox) == []


def test_recovery_when_both_names_survived(inbox: Path) -> None:
    """A slot whose file also sits under its final name is only removed."""
    slot = sealed_slot(inbox, "both.gpg", b"content")
    os.link(slot, inbox / "both.gpg")

    published = recover([inbox])

    assert published == []
    assert (inbox / "both.gpg").read_bytes() == b"content"
    assert slot_files(inbox) == []


def _record(
    name: str, content: bytes, size: int | None = None, version: int = 2
) -> bytes:
    digest = hashlib.sha256(content).digest()[:16]
    size = len(content) if size is None else size
    return struct.pack(">BI16s", version, size, digest) + name.encode()


def _legacy_record(name: str, content: bytes) -> bytes:
    digest = hashlib.sha256(content).hexdigest()
    return f"v1 {len(content)} {digest} {name}".encode()


UNPUBLISHABLE = [
    # never sealed: the client never heard its close succeed
    pytest.param(b"half an upload", None, id="no-record"),
    # the content does not match the record's digest
    pytest.param(b"changed", _record("a.gpg", b"original"), id="digest-mismatch"),
    # the record's size is not the file's size
    pytest.param(b"short", _record("a.gpg", b"short", size=9), id="size-mismatch"),
    # a name that climbs out of the inbox
    pytest.param(b"x", _record("../../escape.gpg", b"x"), id="slash-in-name"),
    # a hidden name, reserved for the gateway's own files
    pytest.param(b"x", _record(".hidden", b"x"), id="hidden-name"),
    # an empty name
    pytest.param(b"x", _record("", b"x"), id="empty-name"),
    # a name that is not UTF-8
    pytest.param(b"x", _record("a.gpg", b"x")[:-5] + b"\xff.gpg", id="bad-utf8"),
    # an unknown record version
    pytest.param(b"x", _record("a.gpg", b"x", version=9), id="unknown-version"),
    # cut short
    pytest.param(b"x", _record("a.gpg", b"x")[:12], id="truncated"),
    # not a record at all
    pytest.param(b"x", b"\xff\xfe garbage", id="garbage"),
]


@pytest.mark.parametrize(("content", "record"), UNPUBLISHABLE)
def test_recovery_removes_slots_it_must_not_publish(
    inbox: Path, content: bytes, record: bytes | None
) -> None:
    """A slot without a valid record matching its content is removed, unpublished."""
    slot = SlotPool(refill_at=-1).take(inbox)
    os.pwrite(slot.fd, content, 0)
    if record is not None:
        os.setxattr(slot.fd, RECORD_ATTRIBUTE, record)
    os.close(slot.fd)

    published = recover([inbox])

    assert published == []
    assert os.listdir(inbox) == []
    assert slot_files(inbox) == []
    assert not (spool_root(inbox) / "escape.gpg").exists()


LEGACY_UNPUBLISHABLE = [
    pytest.param(b"changed", _legacy_record("a.gpg", b"original"), id="digest"),
    pytest.param(b"x", _legacy_record("../escape.gpg", b"x"), id="slash-in-name"),
    pytest.param(b"x", b"v9 1 00 a.gpg", id="unknown-version"),
    pytest.param(b"x", b"\xff\xfe garbage", id="garbage"),
]


@pytest.mark.parametrize(("content", "record"), LEGACY_UNPUBLISHABLE)
def test_recovery_removes_slots_whose_legacy_record_is_not_valid(
    inbox: Path, content: bytes, record: bytes
) -> None:
    """Records of the earlier text format get the same checks."""
    slot = SlotPool(refill_at=-1).take(inbox)
    os.pwrite(slot.fd, content, 0)
    os.setxattr(slot.fd, LEGACY_RECORD_ATTRIBUTE, record)
    os.close(slot.fd)

    assert recover([inbox]) == []
    assert os.listdir(inbox) == []


def test_recovery_publishes_a_slot_sealed_by_an_earlier_version(inbox: Path) -> None:
    """A slot sealed with the earlier text record, before an upgrade, is
    still published."""
    content = os.urandom(1000)
    slot = SlotPool(refill_at=-1).take(inbox)
    os.pwrite(slot.fd, content, 0)
    os.setxattr(slot.fd, LEGACY_RECORD_ATTRIBUTE, _legacy_record("old.gpg", content))
    os.close(slot.fd)

    assert recover([inbox]) == ["old.gpg"]
    assert (inbox / "old.gpg").read_bytes() == content


def test_a_record_fits_in_the_inode_for_names_up_to_the_limit(inbox: Path) -> None:
    """The record of a name of NAME_IN_INODE bytes takes no block of its own
    (which the flush at close would have to write too); a longer one still
    works, in a block of its own where the file system needs one."""
    probe = inbox / "probe"
    probe.write_bytes(b"")
    os.setxattr(probe, RECORD_ATTRIBUTE, b"x")
    if probe.stat().st_blocks:
        pytest.skip("this file system keeps no extended attributes in its inodes")
    probe.unlink()
    content = os.urandom(4096)
    plain = inbox / "plain"
    plain.write_bytes(content)
    with plain.open("rb") as handle:
        os.fsync(handle.fileno())
    data_blocks = plain.stat().st_blocks
    plain.unlink()

    short = sealed_slot(inbox, "n" * NAME_IN_INODE, content)
    long = sealed_slot(inbox, "n" * 200, content)

    assert short.stat().st_blocks == data_blocks
    assert long.stat().st_blocks >= data_blocks
    assert sorted(recover([inbox])) == ["n" * NAME_IN_INODE, "n" * 200]


def test_recovery_leaves_what_is_not_a_regular_file(inbox: Path) -> None:
    """A folder or link under a slot's name is neither followed nor removed."""
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / ".upload-folder").mkdir()
    (inbox / ".upload-link").symlink_to(inbox)

    published = recover([inbox])

    assert published == []
    assert slot_files(inbox) == [".upload-folder", ".upload-link"]


def test_service_start_recovers_and_stop_removes_unused_slots(tmp_path: Path) -> None:
    """Starting publishes a sealed slot left by a crash; stopping leaves no slot."""
    first = start_server(tmp_path)
    first.stop()
    inbox = first.spool / "inbox" / ACCOUNT
    sealed_slot(inbox, "after-crash.gpg", b"sealed before the crash")

    second = SftpService(first.config, MemoryAudit())
    second.start()
    second.stop()

    assert os.listdir(inbox) == ["after-crash.gpg"]
    assert slot_files(inbox) == []


def test_taking_a_slot_never_waits_for_a_folder_flush(inbox: Path) -> None:
    """Flushing inbox folders happens outside the pool's lock; a second flush
    waits for the one under way, so it still returns only once all is flushed."""
    blocking, flushing, release = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )

    def flush_folder(folder: Path) -> None:
        if blocking.is_set():
            flushing.set()
            release.wait(30)
        fsync_dir(folder)

    pool = SlotPool(batch=8, refill_at=0, flush_folder=flush_folder)
    os.close(pool.take(inbox).fd)
    pool.published(inbox)
    blocking.set()
    first = threading.Thread(target=pool.flush)
    first.start()
    assert flushing.wait(30)
    taken: list[int] = []
    taker = threading.Thread(target=lambda: taken.append(pool.take(inbox).fd))
    taker.start()
    second_done = threading.Event()
    second = threading.Thread(target=lambda: (pool.flush(), second_done.set()))
    second.start()

    taker.join(30)
    assert taken, "take() waited for the flush"
    assert not second_done.is_set()
    release.set()
    first.join(30)
    assert second_done.wait(30)
    os.close(taken[0])
    pool.drain()


def test_starting_writeback_that_fails_changes_nothing(tmp_path: Path) -> None:
    """Writeback is a hint: on a descriptor it cannot use, it raises nothing,
    and on a real file the content stays as written."""
    start_writeback(-1)
    path = tmp_path / "data"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"content")
        start_writeback(fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"content"
