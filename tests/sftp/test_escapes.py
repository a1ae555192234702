"""Escape and permission attempts: each is refused and changes nothing on disk."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import paramiko
import pytest

from tests.support.sftp import (
    RunningServer,
    paramiko_session,
    sftp_server,
    snapshot,
    start_server,
)

__all__ = ["sftp_server"]

NOORD = "uitzender-noord"
ROTTERDAM = "rotterdam"
DELIVERY = "8c1e.GM0599.xml.gpg"
RECEIPT = "week.gpg.receipt.asc"

Attempt = Callable[[paramiko.SFTPClient], object]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the whole table, with bait inside and outside the views."""
    folder = tmp_path_factory.mktemp("escapes")
    # Room for every case's session at once: the table tests the views, and
    # a slot given back a moment late must not fail an unrelated case.
    running = start_server(folder, max_sessions_per_account=len(CASES) + 16)
    spool = running.spool
    (folder / "secret.txt").write_text("outside every view")
    (spool / "outbox" / ROTTERDAM / DELIVERY).write_bytes(b"for rotterdam only")
    (spool / "receipts" / NOORD / RECEIPT).write_text("receipt")
    (spool / "inbox" / NOORD / "waiting.gpg").write_bytes(b"unclaimed upload")
    sibling = spool / "inbox" / f"{NOORD}-x"
    sibling.mkdir()
    (sibling / "other.gpg").write_bytes(b"a sibling folder's file")
    os.symlink("/etc/passwd", spool / "outbox" / ROTTERDAM / "planted.xml.gpg")
    try:
        yield running
    finally:
        running.stop()


def read(path: str | bytes) -> Attempt:
    """Open *path* for reading and read it."""
    return lambda sftp: sftp.open(path, "r").read()


def write(path: str | bytes, mode: str = "w") -> Attempt:
    """Open *path* for writing and write to it."""

    def attempt(sftp: paramiko.SFTPClient) -> None:
        with sftp.open(path, mode) as handle:
            handle.write(b"payload")

    return attempt


def request(*fields: Any) -> Attempt:
    """A raw EXTENDED request, for what the clients refuse to send."""
    return lambda sftp: sftp._request(paramiko.sftp.CMD_EXTENDED, *fields)


CASES = [
    # ".." first: the client's working folder is "/", so this is "/secret.txt".
    pytest.param(NOORD, read("../secret.txt"), id="dotdot-leading"),
    # ".." after a folder climbs only to "/", never to the spool.
    pytest.param(NOORD, read("/inbox/../../../secret.txt"), id="dotdot-middle"),
    # ".." last turns a file name into the root, which is not a file.
    pytest.param(NOORD, write("/inbox/.."), id="dotdot-trailing"),
    # ".." into the neighbour folder of the same account's view is allowed to
    # resolve, but reading a receipt through the inbox rules is not the point:
    # the outbox of a municipality is simply not in the view.
    pytest.param(NOORD, read(f"/inbox/../outbox/{DELIVERY}"), id="dotdot-other-view"),
    # An absolute host path is read inside the view, where /etc does not exist.
    pytest.param(NOORD, read("/etc/passwd"), id="absolute-host-path"),
    # The real spool path of another account's file (see spool_path below).
    pytest.param(NOORD, "spool-path", id="absolute-spool-path"),
    # A sibling folder whose name starts with the view folder's name.
    pytest.param(NOORD, write("/inboxx/evil.gpg"), id="sibling-virtual"),
    # The real sibling spool folder, reached by climbing from the inbox.
    pytest.param(NOORD, read(f"/inbox/../{NOORD}-x/other.gpg"), id="sibling-real"),
    # The kernel's view of the process root.
    pytest.param(NOORD, read("/proc/self/root/etc/passwd"), id="proc-self-root"),
    # Listing /proc through the view.
    pytest.param(NOORD, lambda s: s.listdir("/proc/self/cwd"), id="proc-listing"),
    # A symlink inside the inbox pointing out of the jail.
    pytest.param(NOORD, lambda s: s.symlink("/etc/passwd", "/inbox/l"), id="symlink"),
    # A symlink among receipts pointing at another account's file.
    pytest.param(
        NOORD,
        lambda s: s.symlink(f"/outbox/{DELIVERY}", "/receipts/l"),
        id="symlink-receipts",
    ),
    # A hard link of a receipt into the inbox (hardlink@openssh.com).
    pytest.param(
        NOORD,
        request("hardlink@openssh.com", f"/receipts/{RECEIPT}", "/inbox/h.gpg"),
        id="hardlink",
    ),
    # A hard link to a host file.
    pytest.param(
        NOORD,
        request("hardlink@openssh.com", "/etc/passwd", "/receipts/p"),
        id="hardlink-host",
    ),
    # Reading a link planted in the outbox by someone with shell access.
    pytest.param(ROTTERDAM, read("/outbox/planted.xml.gpg"), id="planted-link"),
    # NUL cuts the name short in C: "/inbox/a" must not be what gets written.
    pytest.param(NOORD, write(b"/inbox/a\x00/../../secret.txt"), id="nul"),
    # A newline would forge lines in logs and listings.
    pytest.param(NOORD, write("/inbox/a\nb.gpg"), id="newline"),
    # Bytes that are not UTF-8.
    pytest.param(NOORD, write(b"/inbox/\xff\xfe.gpg"), id="invalid-utf8"),
    # A hidden name could reach another session's upload in progress.
    pytest.param(NOORD, write("/inbox/.upload-0"), id="hidden-name"),
    # A nested path: views have no subfolders.
    pytest.param(NOORD, write("/inbox/sub/x.gpg"), id="nested"),
    # A municipality writing into its outbox.
    pytest.param(ROTTERDAM, write("/outbox/forged.xml.gpg"), id="municipality-write"),
    # A municipality overwriting a delivery.
    pytest.param(ROTTERDAM, write(f"/outbox/{DELIVERY}"), id="municipality-overwrite"),
    # A municipality reaching for receipts.
    pytest.param(ROTTERDAM, read(f"/receipts/{RECEIPT}"), id="municipality-receipts"),
    # An intermediary reading back an upload.
    pytest.param(NOORD, read("/inbox/waiting.gpg"), id="intermediary-read-inbox"),
    # Read and write at once: the flags ask for reading, which the inbox lacks.
    pytest.param(NOORD, write("/inbox/rw.gpg", "w+"), id="open-read-write"),
    # Appending would let a client extend an unclaimed upload.
    pytest.param(NOORD, write("/inbox/waiting.gpg", "a"), id="append"),
    # Overwriting an unclaimed upload.
    pytest.param(NOORD, write("/inbox/waiting.gpg"), id="overwrite-upload"),
    # Removing an unclaimed upload.
    pytest.param(NOORD, lambda s: s.remove("/inbox/waiting.gpg"), id="remove-inbox"),
    # Changing a receipt's mode.
    pytest.param(NOORD, lambda s: s.chmod(f"/receipts/{RECEIPT}", 0o777), id="chmod"),
    # Changing a delivery's times.
    pytest.param(
        ROTTERDAM, lambda s: s.utime(f"/outbox/{DELIVERY}", (0, 0)), id="utime"
    ),
    # Changing a folder's owner.
    pytest.param(NOORD, lambda s: s.chown("/inbox", 0, 0), id="chown"),
    # A new folder inside a view.
    pytest.param(NOORD, lambda s: s.mkdir("/inbox/sub"), id="mkdir"),
    # A new top-level folder.
    pytest.param(NOORD, lambda s: s.mkdir("/tmp"), id="mkdir-root"),
    # Removing a view folder.
    pytest.param(ROTTERDAM, lambda s: s.rmdir("/outbox"), id="rmdir"),
    # Moving a receipt into the inbox, to have it processed as an upload.
    pytest.param(
        NOORD,
        lambda s: s.rename(f"/receipts/{RECEIPT}", "/inbox/r.gpg"),
        id="rename-across",
    ),
    # posix-rename across folders.
    pytest.param(
        NOORD,
        lambda s: s.posix_rename(f"/receipts/{RECEIPT}", "/inbox/r.gpg"),
        id="posix-rename-across",
    ),
    # Renaming a finished upload (only temporary names may be renamed).
    pytest.param(
        NOORD,
        lambda s: s.rename("/inbox/waiting.gpg", "/inbox/other.gpg"),
        id="rename-upload",
    ),
    # Renaming out of the view.
    pytest.param(
        NOORD,
        lambda s: s.rename(f"/receipts/{RECEIPT}", "/../../secret2.txt"),
        id="rename-out",
    ),
    # Reading a link's target.
    pytest.param(
        ROTTERDAM, lambda s: s.readlink("/outbox/planted.xml.gpg"), id="readlink"
    ),
    # Removing a folder as if it were a file.
    pytest.param(ROTTERDAM, lambda s: s.remove("/outbox"), id="remove-folder"),
    # An over-long path.
    pytest.param(NOORD, write("/inbox/" + "a" * 2000), id="long-path"),
]


@pytest.mark.parametrize(("account", "attempt"), CASES)
def test_attempt_is_refused_and_changes_nothing(
    server: RunningServer, account: str, attempt: Attempt | str
) -> None:
    """The attempt fails for the client and leaves every file as it was."""
    if attempt == "spool-path":
        attempt = read(str(server.spool / "outbox" / ROTTERDAM / DELIVERY))
    before = snapshot(server.folder)
    denials = len(server.events("sftp.denied"))

    with paramiko_session(server, account) as sftp, pytest.raises(OSError):
        assert callable(attempt)
        attempt(sftp)

    assert snapshot(server.folder) == before
    new = server.events("sftp.denied")[denials:]
    assert new, "the refusal must be recorded with its reason"
    assert all(str(e["path"]).isprintable() for e in new)


STOCK_CLIENT_CASES = [
    # ".." from the working folder, by the stock client.
    pytest.param(NOORD, "get ../secret.txt", id="get-dotdot"),
    # ".." in the middle of the path.
    pytest.param(NOORD, "get /receipts/../../secret.txt", id="get-dotdot-middle"),
    # An absolute host path.
    pytest.param(NOORD, "put {bait} /etc/bait", id="put-absolute"),
    # A sibling folder name with the inbox's name as prefix.
    pytest.param(NOORD, "put {bait} /inboxx/bait", id="put-sibling"),
    # The process root through /proc.
    pytest.param(NOORD, "get /proc/self/root/etc/passwd", id="get-proc"),
    # A symlink out of the jail.
    pytest.param(NOORD, "symlink /etc/passwd /inbox/link", id="symlink"),
    # mkdir and rmdir.
    pytest.param(NOORD, "mkdir /inbox/sub", id="mkdir"),
    pytest.param(ROTTERDAM, "rmdir /outbox", id="rmdir"),
    # setstat through chmod.
    pytest.param(NOORD, f"chmod 777 /receipts/{RECEIPT}", id="chmod"),
    # A rename across folders.
    pytest.param(NOORD, f"rename /receipts/{RECEIPT} /inbox/r.gpg", id="rename-across"),
    # Reading and removing in the upload-only inbox.
    pytest.param(NOORD, "get /inbox/waiting.gpg", id="get-inbox"),
    pytest.param(NOORD, "rm /inbox/waiting.gpg", id="rm-inbox"),
    # A municipality writing into its outbox.
    pytest.param(ROTTERDAM, "put {bait} /outbox/forged.gpg", id="put-outbox"),
]


@pytest.mark.parametrize(("account", "command"), STOCK_CLIENT_CASES)
def test_stock_client_attempt_is_refused(
    server: RunningServer, account: str, command: str
) -> None:
    """The stock sftp client fails the command and no file changes."""
    bait = server.folder / "bait.gpg"
    bait.write_bytes(b"bait")
    before = snapshot(server.folder)

    result = server.sftp(account, [command.format(bait=bait)])

    assert result.returncode != 0
    assert snapshot(server.folder) == before


def test_inbox_lists_as_empty_and_hides_its_files(server: RunningServer) -> None:
    """The upload-only inbox can be opened, but shows and stats no file."""
    with paramiko_session(server, NOORD) as sftp:
        listed = sftp.listdir("/inbox")
        with pytest.raises(FileNotFoundError):
            sftp.stat("/inbox/waiting.gpg")

    assert listed == []
    assert (server.spool / "inbox" / NOORD / "waiting.gpg").exists()


def test_spool_folder_swapped_for_a_link_is_refused(sftp_server: RunningServer) -> None:
    """An outbox replaced by a link to elsewhere mid-session serves nothing."""
    outbox = sftp_server.spool / "outbox" / ROTTERDAM
    elsewhere = sftp_server.folder / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stolen.xml.gpg").write_bytes(b"not for rotterdam")

    with paramiko_session(sftp_server, ROTTERDAM) as sftp:
        sftp.listdir("/outbox")
        outbox.rename(sftp_server.folder / "moved-outbox")
        outbox.symlink_to(elsewhere)
        with pytest.raises(OSError):
            sftp.open("/outbox/stolen.xml.gpg").read()
        with pytest.raises(OSError):
            sftp.listdir("/outbox")

    reasons = [e["reason"] for e in sftp_server.events("sftp.denied")]
    assert "spool folder moved or replaced" in reasons
