"""Tests of the inbox watcher."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.spool import Spool
from gateway.watch import InboxWatcher, complete_uploads

ACCOUNT = "uitzender-noord"


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    """A spool with one intermediary's folders."""
    spool = Spool(tmp_path / "spool")
    spool.prepare([ACCOUNT], [])
    return spool


@pytest.fixture
def seen(spool: Spool) -> Iterator[queue.Queue[tuple[str, Path]]]:
    """Submissions of a running watcher that rescans every half second."""
    submissions: queue.Queue[tuple[str, Path]] = queue.Queue()
    watcher = InboxWatcher(
        spool,
        [ACCOUNT],
        lambda account, path: submissions.put((account, path)),
        rescan_seconds=0.5,
        settle_seconds=0.2,
    )
    watcher.start()
    yield submissions
    watcher.stop()


def _next(submissions: queue.Queue[tuple[str, Path]]) -> tuple[str, Path]:
    return submissions.get(timeout=10)


def test_closed_file_is_submitted(
    spool: Spool, seen: queue.Queue[tuple[str, Path]]
) -> None:
    """A file written and closed in an inbox is submitted for its account."""
    target = spool.inbox(ACCOUNT) / "week10.xml.gpg"

    target.write_bytes(b"payload")

    assert _next(seen) == (ACCOUNT, target)


def test_renamed_file_is_submitted_but_not_its_temporary_name(
    spool: Spool, seen: queue.Queue[tuple[str, Path]]
) -> None:
    """An upload published by rename is submitted under its final name only."""
    temporary = spool.inbox(ACCOUNT) / ".week11.xml.gpg.part"
    target = spool.inbox(ACCOUNT) / "week11.xml.gpg"

    temporary.write_bytes(b"payload")
    temporary.rename(target)

    assert _next(seen) == (ACCOUNT, target)


def test_file_moved_in_from_elsewhere_is_found_by_the_rescan(
    spool: Spool, tmp_path: Path, seen: queue.Queue[tuple[str, Path]]
) -> None:
    """A file moved in from an unwatched folder is found by the next rescan."""
    outside = tmp_path / "outside.xml.gpg"
    outside.write_bytes(b"payload")
    target = spool.inbox(ACCOUNT) / "moved.xml.gpg"

    os.rename(outside, target)

    assert _next(seen) == (ACCOUNT, target)


def test_scan_takes_only_settled_regular_files(spool: Spool, tmp_path: Path) -> None:
    """Scans skip temporary names, links, folders and files still changing."""
    inbox = spool.inbox(ACCOUNT)
    old = time.time() - 60
    for name in ("a.gpg", ".hidden", "b.gpg.part", "c.filepart", "d.tmp"):
        (inbox / name).write_bytes(b"x")
        os.utime(inbox / name, (old, old))
    (inbox / "fresh.gpg").write_bytes(b"x")
    (inbox / "link.gpg").symlink_to(tmp_path)
    (inbox / "folder.gpg").mkdir()

    found = complete_uploads(inbox, settle_seconds=5)

    assert found == [inbox / "a.gpg"]


def test_inbox_added_later_is_scanned(spool: Spool) -> None:
    """An inbox added after construction (a reload) is scanned like the others."""
    spool.prepare(["flexwerk-zuid"], [])
    target = spool.inbox("flexwerk-zuid") / "late.gpg"
    target.write_bytes(b"payload")
    old = time.time() - 60
    os.utime(target, (old, old))
    watcher = InboxWatcher(spool, [], lambda a, p: None, rescan_seconds=60)

    watcher.watch("flexwerk-zuid")

    assert watcher.scan() == 1
