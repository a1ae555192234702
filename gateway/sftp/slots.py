"""Upload slots: hidden upload files whose names are on disk before they are used.

A completed upload must survive a power cut from the moment its client hears
that the close succeeded. The plain way costs two disk flushes per upload: the
file (data before name), then the inbox folder (the name). For small uploads
this module needs one flush on the client's path:

1. Slots are empty hidden files (``.upload-<random>``) in the intermediary's
   inbox, created a batch at a time with one flush of that folder for the whole
   batch, so a slot's own name is already durable when an upload is written
   into it. They live in the inbox itself, not beside it, so that publishing
   is a rename inside one watched folder: the daemon's watcher sees a move and
   queues the upload at once (a move in from an unwatched folder would reach
   it only as a bare creation, left to the next rescan). The watcher and the
   daemon's scans skip hidden names. A batch made in the background is also
   flushed file by file: on ext4 without a journal a new file's first
   ``fsync`` also writes its folder, and at an upload's close that would be
   one more write to wait for.
2. At close, an upload of at most :data:`SMALL_UPLOAD_BYTES` gets a completion
   record in an extended attribute of its own file (final name, size and the
   first 128 bits of the content's SHA-256); one ``fsync`` makes data and
   record durable together. The record is binary and its attribute's name
   short so that, for final names up to :data:`NAME_IN_INODE` bytes, it fits
   in the inode itself (ext4's 256-byte inodes have 68 bytes for it): a
   longer record needs a block of its own, one more write for the ``fsync``
   to wait for. By then the data is mostly on the disk already: the session
   starts its writeback (:func:`gateway.sftp.kernel.start_writeback`) as soon
   as each write is answered, while the client reads the reply, so the flush
   the client waits for writes little more than the inode. Then the slot is
   renamed to its final name in the inbox and the client is answered; the
   inbox folder is flushed later, at the next batch of slots or when the
   session ends, for many uploads at once.
3. After a crash, :func:`recover` renames every slot with a valid record whose
   content still matches it to its final name, and removes every other slot.
   The digest makes sure a record that reached the disk without all of its
   data (POSIX does not order the two within one ``fsync``) is never published.

Larger uploads and file systems without user extended attributes (``tmpfs``
before Linux 6.6) take the plain way: ``fsync`` of the file, rename, flush of the inbox
folder, all before the answer.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway import logs
from gateway.sftp.publish import rename_new
from gateway.spool import FILE_MODE, NO_ATTRIBUTES, fsync_dir, make_private_dir

UPLOAD_PREFIX = ".upload-"
RECORD_ATTRIBUTE = "user.lbup"
# Records written before version 2, still read at recovery.
LEGACY_RECORD_ATTRIBUTE = "user.loonbrug.upload"
SMALL_UPLOAD_BYTES = 1024 * 1024
BATCH = 32
_RECORD_VERSION = 2
_LEGACY_RECORD_VERSION = "v1"
# Version, content size, the first 16 bytes of the content's SHA-256; the
# final name follows.
_RECORD = struct.Struct(">BI16s")
# The longest final name whose record fits in a 256-byte ext4 inode.
NAME_IN_INODE = 68 - _RECORD.size
_OPEN_SLOT = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Slot:
    """An open upload file, and whether its name was on disk before writing."""

    path: Path
    fd: int
    named_on_disk: bool


class SlotPool:
    """Ready slots per inbox folder, shared by every session of the service.

    A background thread makes the next batch when an inbox's ready slots fall
    to *refill_at* (half a batch unless told), so uploads rarely wait for it;
    an upload that finds none ready makes a batch itself. :meth:`drain` stops
    the thread. *flush_folder* makes a folder's entries durable (``fsync`` of
    the folder unless told); the background thread also flushes each slot it
    makes, once its name is durable, with *flush_file* (``os.fsync`` of the
    open file unless told).
    """

    def __init__(
        self,
        batch: int = BATCH,
        refill_at: int | None = None,
        flush_folder: Callable[[Path], None] = fsync_dir,
        flush_file: Callable[[int], None] = os.fsync,
    ) -> None:
        self.batch = batch
        self._flush_folder = flush_folder
        self._flush_file = flush_file
        self.refill_at = batch // 2 if refill_at is None else refill_at
        self._ready: dict[Path, list[Path]] = {}
        self._wanted: set[Path] = set()
        self._unflushed: set[Path] = set()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._maker: threading.Thread | None = None
        self._stopping = False

    def folder(self, inbox: Path) -> Path:
        """The slot folder that serves *inbox*: the inbox itself."""
        return inbox

    def take(self, inbox: Path) -> Slot:
        """An empty upload file for *inbox*, opened for reading and writing."""
        with self._lock:
            ready = self._ready.setdefault(inbox, [])
            if not ready:
                ready.extend(self._new_batch(inbox))
            path = ready.pop() if ready else None
            if path is not None and len(ready) <= self.refill_at:
                self._want(inbox)
        if path is not None:
            fd = _open_empty(path)
            if fd is not None:
                return Slot(path, fd, named_on_disk=True)
        # No slot folder on the inbox's file system: a hidden file in the inbox.
        path = inbox / f"{UPLOAD_PREFIX}{uuid.uuid4().hex}"
        return Slot(path, os.open(path, _CREATE, FILE_MODE), named_on_disk=False)

    def _want(self, inbox: Path) -> None:
        self._wanted.add(inbox)
        if self._maker is None and not self._stopping:
            self._maker = threading.Thread(
                target=self._make_wanted, name="sftp-slots", daemon=True
            )
            self._maker.start()
        self._wake.notify()

    def _make_wanted(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                inbox = self._wanted.pop()
            try:
                self._add_batch(inbox)
            except OSError as exc:
                # Uploads then make their own batches, and meet the error there.
                logs.get("sftp").warning("sftp.slots_failed", error=exc.strerror)

    def _add_batch(self, inbox: Path) -> None:
        # Each slot's first flush here, not at its upload's close (see 1. above).
        paths = self._make_files(inbox, flush_each=True)
        with self._lock:
            self._ready.setdefault(inbox, []).extend(paths)
        # Renames into inboxes since the last flush ride along.
        self.flush()

    def _new_batch(self, inbox: Path) -> list[Path]:
        # Called with the lock held, by an upload that found no slot ready.
        # Making the batch flushes this inbox folder, renames into it included.
        paths = self._make_files(inbox)
        self._unflushed.discard(inbox)
        return paths

    def _make_files(self, inbox: Path, *, flush_each: bool = False) -> list[Path]:
        folder = self.folder(inbox)
        make_private_dir(folder)
        paths = [
            folder / f"{UPLOAD_PREFIX}{uuid.uuid4().hex}" for _ in range(self.batch)
        ]
        fds: list[int] = []
        try:
            for path in paths:
                fds.append(os.open(path, _CREATE, FILE_MODE))
            self._flush_folder(folder)
            if flush_each:
                for fd in fds:
                    self._flush_file(fd)
        finally:
            for fd in fds:
                os.close(fd)
        return paths

    def published(self, inbox: Path) -> None:
        """Note a rename into *inbox* whose folder has not been flushed yet."""
        with self._lock:
            self._unflushed.add(inbox)

    def flush(self) -> None:
        """Flush every inbox folder that received a rename before this call.

        The flushing happens outside the pool's lock, so that uploads taking
        slots never wait for the disk; a second lock makes a call that finds
        another one flushing wait until that one is done.
        """
        with self._flushing:
            with self._lock:
                folders = sorted(self._unflushed)
                self._unflushed.clear()
            for index, folder in enumerate(folders):
                try:
                    self._flush_folder(folder)
                except OSError:
                    with self._lock:
                        self._unflushed.update(folders[index:])
                    raise

    def drain(self) -> None:
        """Stop making slots, flush, and remove the slots no upload has taken."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            maker = self._maker
        if maker is not None:
            maker.join()
        self.flush()
        with self._lock:
            for paths in self._ready.values():
                for path in paths:
                    path.unlink(missing_ok=True)
            self._ready.clear()
            self._maker, self._stopping = None, False


def _open_empty(path: Path) -> int | None:
    # The slot must still be the empty regular file this process made.
    try:
        fd = os.open(path, _OPEN_SLOT)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size or info.st_nlink != 1:
        os.close(fd)
        return None
    return fd


def seal(fd: int, name: str, size: int) -> bool:
    """Record the completion of a small upload in its file and flush both.

    False, with nothing flushed, if the upload is too large for a record or
    the file system keeps no user extended attributes.
    """
    if size > SMALL_UPLOAD_BYTES:
        return False
    content = os.pread(fd, size + 1, 0)
    if len(content) != size:
        return False
    try:
        os.setxattr(fd, RECORD_ATTRIBUTE, _record(name, content))
    except OSError as exc:
        if exc.errno in NO_ATTRIBUTES:
            return False
        raise
    os.fsync(fd)
    return True


def _record(name: str, content: bytes) -> bytes:
    digest = hashlib.sha256(content).digest()[:16]
    return _RECORD.pack(_RECORD_VERSION, len(content), digest) + name.encode()


def recorded_name(path: Path) -> str | None:
    """The final name a slot's valid completion record gives, else None."""
    try:
        record = _read_record(path)
        content = path.read_bytes() if record.size <= SMALL_UPLOAD_BYTES else b""
    except (OSError, ValueError):
        return None
    valid = (
        len(content) == record.size
        and record.matches(content)
        and _plain_name(record.name)
    )
    return record.name if valid else None


@dataclass(frozen=True)
class _Record:
    """A completion record read back from a slot."""

    size: int
    name: str
    digest: bytes
    # Legacy records hold the whole SHA-256, in hexadecimal.
    legacy: bool = False

    def matches(self, content: bytes) -> bool:
        actual = hashlib.sha256(content)
        if self.legacy:
            return actual.hexdigest().encode() == self.digest
        return actual.digest()[:16] == self.digest


def _read_record(path: Path) -> _Record:
    # OSError when the slot has no record (or has gone), ValueError when what
    # it has is not a record.
    try:
        raw = os.getxattr(path, RECORD_ATTRIBUTE, follow_symlinks=False)
    except OSError:
        return _read_legacy_record(path)
    if len(raw) < _RECORD.size:
        raise ValueError("record too short")
    version, size, digest = _RECORD.unpack_from(raw)
    if version != _RECORD_VERSION:
        raise ValueError("unknown record version")
    return _Record(size, raw[_RECORD.size :].decode(), digest)


def _read_legacy_record(path: Path) -> _Record:
    raw = os.getxattr(path, LEGACY_RECORD_ATTRIBUTE, follow_symlinks=False)
    version, size, digest, name = raw.decode().split(" ", 3)
    if version != _LEGACY_RECORD_VERSION:
        raise ValueError("unknown record version")
    return _Record(int(size), name, digest.encode(), legacy=True)


def _plain_name(name: str) -> bool:
    # The record was written by this service, but a name that could leave the
    # inbox is never trusted.
    return (
        bool(name)
        and "/" not in name
        and "\x00" not in name
        and not name.startswith(".")
        and len(name.encode()) <= 255
    )


def recover(inboxes: Iterable[Path]) -> list[str]:
    """Publish the sealed slots a crash left behind, remove all other slots.

    Looks in every folder of *inboxes*; returns the names published.
    """
    published: list[str] = []
    for inbox in inboxes:
        if not inbox.is_dir():
            continue
        for slot in sorted(inbox.glob(f"{UPLOAD_PREFIX}*")):
            if not stat.S_ISREG(os.lstat(slot).st_mode):
                continue  # not made by this service: left for an operator
            name = recorded_name(slot)
            if name is not None and _settle(slot, inbox / name):
                published.append(name)
            slot.unlink(missing_ok=True)
        fsync_dir(inbox)
    return published


def _settle(slot: Path, target: Path) -> bool:
    try:
        rename_new(slot, target)
        return True
    except FileExistsError:
        # The rename reached the disk and so did the slot's old name: the same
        # file under two names. A different file under that name was published
        # and claimed before the crash already; it stays as it is.
        if not os.path.samefile(slot, target):
            _log_conflict(target)
        return False


def _log_conflict(target: Path) -> None:
    logs.get("sftp").warning(
        "sftp.recovery_conflict", file=target.name, reason="name taken"
    )
