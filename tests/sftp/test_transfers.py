"""Uploads, receipts and deliveries through the stock OpenSSH ``sftp`` client."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from gateway.audit import MemoryAudit
from gateway.sftp.service import SftpService
from gateway.sftp.slots import UPLOAD_PREFIX
from tests.support.pagecache import dirty_pages
from tests.support.sftp import (
    RunningServer,
    paramiko_session,
    sftp_server,
    start_server,
    wait_for,
)

__all__ = ["sftp_server"]

NOORD = "uitzender-noord"


def inbox_names(server: RunningServer, account: str = NOORD) -> list[str]:
    """Every name in the account's real inbox, hidden ones included, except
    the empty upload slots the server keeps ready there."""
    inbox = server.spool / "inbox" / account
    return sorted(
        entry.name
        for entry in os.scandir(inbox)
        if not (entry.name.startswith(UPLOAD_PREFIX) and entry.stat().st_size == 0)
    )


def partial_uploads(server: RunningServer, account: str = NOORD) -> list[str]:
    """Hidden upload files that hold data: in the inbox or in a taken slot."""
    folders = [server.spool / "inbox" / account]
    found = []
    for folder in filter(Path.is_dir, folders):
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.name.startswith(".") and entry.stat().st_size:
                        found.append(entry.name)
                except FileNotFoundError:
                    continue  # removed while we looked
    return sorted(found)


def test_upload_appears_complete_in_the_inbox(sftp_server: RunningServer) -> None:
    """A put lands under its own name with its content, and is audited once."""
    source = sftp_server.folder / "report.xml.gpg"
    source.write_bytes(os.urandom(70_000))

    result = sftp_server.sftp(NOORD, [f"put {source} /inbox/"])

    assert result.returncode == 0, result.stderr
    assert inbox_names(sftp_server) == ["report.xml.gpg"]
    landed = sftp_server.spool / "inbox" / NOORD / "report.xml.gpg"
    assert landed.read_bytes() == source.read_bytes()
    assert landed.stat().st_mode & 0o777 == 0o600
    [event] = sftp_server.events("upload.completed")
    assert (event["account"], event["file"], event["size"]) == (
        NOORD,
        "report.xml.gpg",
        70_000,
    )


def test_upload_to_a_temporary_name_then_rename(sftp_server: RunningServer) -> None:
    """The WinSCP way: a .filepart is not an upload until posix-rename names it."""
    source = sftp_server.folder / "week.gpg"
    source.write_bytes(b"encrypted report")

    result = sftp_server.sftp(
        NOORD,
        [
            f"put {source} /inbox/week.gpg.filepart",
            "rename /inbox/week.gpg.filepart /inbox/week.gpg",
        ],
    )

    assert result.returncode == 0, result.stderr
    assert inbox_names(sftp_server) == ["week.gpg"]
    assert [e["file"] for e in sftp_server.events("upload.completed")] == ["week.gpg"]


def test_legacy_rename_of_a_temporary_name(sftp_server: RunningServer) -> None:
    """The plain SFTP v3 RENAME request works like posix-rename."""
    with paramiko_session(sftp_server, NOORD) as sftp:
        sftp.putfo(io.BytesIO(b"report"), "/inbox/a.part", confirm=False)
        sftp.rename("/inbox/a.part", "/inbox/a.gpg")

    assert inbox_names(sftp_server) == ["a.gpg"]


def test_receipt_download_and_removal(sftp_server: RunningServer) -> None:
    """An intermediary lists, downloads and removes its receipt."""
    receipt = sftp_server.spool / "receipts" / NOORD / "week.gpg.receipt.asc"
    receipt.write_text("signed receipt")
    target = sftp_server.folder / "got.asc"

    result = sftp_server.sftp(
        NOORD,
        [
            "ls /receipts",
            f"get /receipts/week.gpg.receipt.asc {target}",
            "rm /receipts/*",
        ],
    )

    assert result.returncode == 0, result.stderr
    assert "week.gpg.receipt.asc" in result.stdout
    assert target.read_text() == "signed receipt"
    assert not receipt.exists()


def test_outbox_download_and_removal_are_recorded(sftp_server: RunningServer) -> None:
    """A municipality's full download and its removal reach the audit and ledger."""
    name = "8c1e.GM0599.xml.gpg"
    delivery = sftp_server.spool / "outbox" / "rotterdam" / name
    delivery.write_bytes(os.urandom(600_000))
    target = sftp_server.folder / "fetched"

    result = sftp_server.sftp(
        "rotterdam", ["cd outbox", f"get {name} {target}", f"rm {name}"]
    )

    assert result.returncode == 0, result.stderr
    assert target.stat().st_size == 600_000
    assert not delivery.exists()
    assert [
        (e["file"], e["size"]) for e in sftp_server.events("delivery.downloaded")
    ] == [(name, 600_000)]
    assert len(sftp_server.events("delivery.removed")) == 1
    assert sftp_server.ledger.was_downloaded("rotterdam", name)
    with sqlite3.connect(sftp_server.config.ledger_path) as db:
        [(removed_at,)] = db.execute(
            "SELECT removed_at FROM deliveries WHERE account = ? AND file_name = ?",
            ("rotterdam", name),
        ).fetchall()
    assert removed_at


def test_partial_read_is_not_a_delivery(sftp_server: RunningServer) -> None:
    """Reading only the start of an outbox file records no download."""
    name = "partial.GM0599.xml.gpg"
    (sftp_server.spool / "outbox" / "rotterdam" / name).write_bytes(b"x" * 10_000)

    with (
        paramiko_session(sftp_server, "rotterdam") as sftp,
        sftp.open(f"/outbox/{name}") as handle,
    ):
        handle.read(100)

    assert sftp_server.events("delivery.downloaded") == []


def test_a_waiting_upload_is_never_overwritten(sftp_server: RunningServer) -> None:
    """A second upload under the name of an unclaimed one is refused."""
    waiting = sftp_server.spool / "inbox" / NOORD / "same.gpg"
    waiting.write_bytes(b"first")
    source = sftp_server.folder / "same.gpg"
    source.write_bytes(b"second")

    result = sftp_server.sftp(NOORD, [f"put {source} /inbox/same.gpg"])

    assert result.returncode != 0
    assert waiting.read_bytes() == b"first"
    assert inbox_names(sftp_server) == ["same.gpg"]


def test_upload_over_the_size_limit_leaves_nothing(sftp_server: RunningServer) -> None:
    """An upload larger than max_upload_bytes fails and no file remains."""
    source = sftp_server.folder / "huge.gpg"
    source.write_bytes(b"\0" * (sftp_server.config.gateway.max_upload_bytes + 1))

    result = sftp_server.sftp(NOORD, [f"put {source} /inbox/"])

    assert result.returncode != 0
    assert inbox_names(sftp_server) == []
    reasons = [e["reason"] for e in sftp_server.events("sftp.denied")]
    assert "upload exceeds the size limit" in reasons


def test_dropped_upload_leaves_nothing(sftp_server: RunningServer) -> None:
    """A connection lost mid-upload leaves neither the file nor its hidden part."""
    with paramiko_session(sftp_server, NOORD) as sftp:
        handle = sftp.open("/inbox/dropped.gpg", "w")
        handle.write(os.urandom(300_000))
        handle.flush()
        assert len(partial_uploads(sftp_server)) == 1  # only the hidden part
        assert inbox_names(sftp_server) == partial_uploads(sftp_server)
        sftp.get_channel().get_transport().close()

    assert wait_for(lambda: partial_uploads(sftp_server) == [])
    assert inbox_names(sftp_server) == []
    assert sftp_server.events("upload.completed") == []


def test_killed_client_leaves_nothing(sftp_server: RunningServer) -> None:
    """Killing the stock client during a large upload leaves no file behind."""
    source = sftp_server.folder / "large.gpg"
    source.write_bytes(os.urandom(3_900_000))
    batch = sftp_server.folder / "batch-kill"
    batch.write_text(f"put {source} /inbox/\n")
    process = subprocess.Popen(
        [
            "sftp",
            "-b",
            str(batch),
            "-l",
            "800",  # throttled to 100 KB/s, so the kill lands mid-transfer
            *sftp_server.ssh_options(NOORD),
            "-P",
            str(sftp_server.service.port),
            f"{NOORD}@127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: len(partial_uploads(sftp_server)) == 1)
    finally:
        process.kill()
        process.wait()

    assert wait_for(lambda: partial_uploads(sftp_server) == [])
    assert inbox_names(sftp_server) == []
    assert sftp_server.events("upload.completed") == []


def test_twenty_concurrent_sessions(sftp_server: RunningServer) -> None:
    """Twenty stock clients at once each upload or download their own file intact."""
    files = {n: os.urandom(150_000 + n) for n in range(20)}
    for n in range(10, 20):
        (sftp_server.spool / "outbox" / "rotterdam" / f"{n}.xml.gpg").write_bytes(
            files[n]
        )
    results: dict[int, subprocess.CompletedProcess[str]] = {}

    def transfer(n: int) -> None:
        local = sftp_server.folder / f"local-{n}"
        if n < 10:
            local.write_bytes(files[n])
            account = ("uitzender-noord", "flexwerk-zuid")[n % 2]
            command = f"put {local} /inbox/{n}.xml.gpg"
        else:
            account, command = "rotterdam", f"get /outbox/{n}.xml.gpg {local}"
        results[n] = sftp_server.sftp(account, [command], timeout=120)

    threads = [threading.Thread(target=transfer, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(r.returncode == 0 for r in results.values()), results
    for n in range(10):
        account = ("uitzender-noord", "flexwerk-zuid")[n % 2]
        landed = sftp_server.spool / "inbox" / account / f"{n}.xml.gpg"
        assert landed.read_bytes() == files[n]
    for n in range(10, 20):
        assert (sftp_server.folder / f"local-{n}").read_bytes() == files[n]
    assert len(sftp_server.events("session.opened")) == 20


def test_stale_hidden_uploads_are_removed_at_start(tmp_path: Path) -> None:
    """Hidden upload files left by a crashed run are gone after the next start."""
    first = start_server(tmp_path)
    inbox = first.spool / "inbox" / NOORD
    first.stop()
    (inbox / ".upload-0123").write_bytes(b"half an upload")
    (inbox / "complete.gpg").write_bytes(b"a finished upload")

    second = SftpService(first.config, MemoryAudit())
    second.start()
    second.stop()

    assert sorted(os.listdir(inbox)) == ["complete.gpg"]


def test_a_small_upload_goes_to_the_disk_while_the_client_reads_the_reply(
    sftp_server: RunningServer,
) -> None:
    """Once a write is answered, its data is on its way to the disk, so that
    the close has little left to flush: no page of the upload stays dirty."""
    inbox = sftp_server.spool / "inbox" / NOORD
    probe = inbox / "probe"
    with probe.open("wb") as handle:
        handle.write(b"x" * 4096)
        handle.flush()
        if not dirty_pages(handle.fileno()):
            pytest.skip("this kernel or file system does not report dirty pages")
    probe.unlink()

    with paramiko_session(sftp_server, NOORD) as sftp:
        upload = sftp.open("/inbox/week.gpg", "wb")
        upload.write(os.urandom(8192))
        upload.flush()
        sftp.stat("/inbox")  # answered after the write's writeback began
        [slot] = partial_uploads(sftp_server)
        fd = os.open(inbox / slot, os.O_RDONLY)
        try:
            assert dirty_pages(fd) == 0
        finally:
            os.close(fd)
        upload.close()
    assert (inbox / "week.gpg").stat().st_size == 8192
