"""The spool: the folders through which every file moves.

::

    spool/
      inbox/<intermediary>/      complete uploads waiting to be claimed
      receipts/<intermediary>/   signed receipts for the intermediary to fetch
      outbox/<municipality>/     encrypted reports for the municipality to fetch
      work/<upload-id>/          a claimed upload while it is processed (0700)
      archive/<intermediary>/    uploads as received, still encrypted
      rejected/<intermediary>/   rejected uploads as received, still encrypted

Every folder is created 0700 and every file 0600. Spool folders are named by the
partner's account id, which :mod:`gateway.config` restricts to ``[a-z0-9-]``, so a
name can never climb out of its parent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gateway.errors import SpoolError

DIR_MODE = 0o700
FILE_MODE = 0o600

# Names an uploading client uses while a transfer is still running: WinSCP writes
# ``.filepart``, FileZilla and many scripts ``.part`` or ``.tmp``; dot-files are
# our own SFTP server's hidden upload names and editors' scratch files.
TEMPORARY_SUFFIXES = (".part", ".filepart", ".tmp", ".partial")
# Errors of setxattr(2) that mean: no user attributes here (unsupported,
# refused by a security module, or no room for one).
NO_ATTRIBUTES = (
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.EPERM,
    errno.EACCES,
    errno.ENOSPC,
)


_KINDS = ("inbox", "receipts", "outbox", "archive", "rejected")


def is_temporary_name(name: str) -> bool:
    """True for names that mark an upload still in progress, or hidden files."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class Spool:
    """The spool folder tree rooted at :attr:`root`."""

    root: Path

    def inbox(self, account: str) -> Path:
        """Where an intermediary's complete uploads appear."""
        return self.root / "inbox" / account

    def receipts(self, account: str) -> Path:
        """Where an intermediary's receipts are written."""
        return self.root / "receipts" / account

    def outbox(self, account: str) -> Path:
        """Where a municipality's reports are written."""
        return self.root / "outbox" / account

    def work(self, upload_id: str | None = None) -> Path:
        """The work folder, or the one of a single upload."""
        base = self.root / "work"
        return base / upload_id if upload_id else base

    def archive(self, account: str) -> Path:
        """Where accepted uploads are kept as received."""
        return self.root / "archive" / account

    def rejected(self, account: str) -> Path:
        """Where rejected uploads are kept as received."""
        return self.root / "rejected" / account

    def prepare(
        self, intermediaries: Iterable[str], municipalities: Iterable[str]
    ) -> None:
        """Create every folder the partners need, each 0700."""
        # The parents first: mkdir(parents=True) would give them the umask's
        # mode, and a world-readable inbox/ lists every partner's account id.
        folders = [self.root, *(self.root / kind for kind in _KINDS), self.work()]
        for account in intermediaries:
            folders += [
                self.inbox(account),
                self.receipts(account),
                self.archive(account),
                self.rejected(account),
            ]
        folders += [self.outbox(account) for account in municipalities]
        for folder in folders:
            make_private_dir(folder)


def make_private_dir(path: Path) -> None:
    """Create *path* and its missing parents with mode 0700."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        path.chmod(DIR_MODE)
    except OSError as exc:
        raise SpoolError(f"cannot create folder {path}: {exc.strerror}") from exc


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk, so a rename in it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(target: Path) -> Iterator[BinaryIO]:
    """Write *target* through a hidden temporary file beside it.

    The temporary file is fsynced and renamed over the target, then the folder is
    fsynced: readers see the old file or the whole new one, never a part. On an
    exception the temporary file is removed and the target is untouched.
    """
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    temp = Path(temp_name)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(target)
        fsync_dir(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomically(target: Path, data: bytes) -> None:
    """Write *data* to *target* all at once or not at all."""
    with atomic_writer(target) as handle:
        handle.write(data)
