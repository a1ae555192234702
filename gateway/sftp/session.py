"""One SFTP session: requests in, guarded file operations, replies out.

Requests reach the session in the SSH transport's own thread
(:mod:`gateway.sftp.transport`), which answers every request already received
and sends the replies together: clients pipeline their writes and reads, and
one channel packet per burst instead of one per reply, with no thread switch
between receiving a request and answering it, keeps small-file uploads from
being latency-bound.

Uploads are written to a hidden, unique name (a slot, :mod:`gateway.sftp.slots`)
and renamed to their final name in the inbox only when the client closes the
file after a clean transfer; a dropped connection removes the hidden file. The
final name is given by a rename that refuses to replace an existing file
(:mod:`gateway.sftp.publish`), so an upload never overwrites one the gateway has
not claimed yet.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import paramiko
from paramiko.message import Message

from gateway.sftp import protocol as wire
from gateway.sftp.accounts import Right
from gateway.sftp.events import Recorder
from gateway.sftp.jail import DeniedError, Target, View, clean, rights_for_open
from gateway.sftp.kernel import start_writeback
from gateway.sftp.protocol import Attributes, Kind, MalformedError, Reader, Status
from gateway.sftp.publish import rename_new
from gateway.sftp.slots import SMALL_UPLOAD_BYTES, UPLOAD_PREFIX, SlotPool, seal
from gateway.sftp.transport import (
    GatewayTransport,
    can_send_now,
    consumed,
    send_message,
)
from gateway.spool import fsync_dir, is_temporary_name

__all__ = ["UPLOAD_PREFIX", "SessionSettings", "SftpSession"]
# Refused requests a session may make before it is closed: clients make a few
# by accident, a prober makes hundreds (and each one is an audit event).
MAX_DENIALS = 50
# Replies answered before any is sent: a burst of reads of a large file must
# not be answered all at once into memory.
REPLY_BUDGET = 1024 * 1024
_NAMES_PER_REPLY = 100
_APPEND = wire.OpenFlag.APPEND.value
_EXTENSIONS = (
    ("posix-rename@openssh.com", "1"),
    ("limits@openssh.com", "1"),
)


class TooManyDenialsError(Exception):
    """The session made more refused requests than :data:`MAX_DENIALS`."""


@dataclass(frozen=True)
class SessionSettings:
    """What a session needs to know about its account and its limits."""

    view: View
    recorder: Recorder
    max_upload_bytes: int
    idle_timeout: float
    on_end: Callable[[str], None]
    slots: SlotPool


@runtime_checkable
class SettingsSource(Protocol):
    """The SSH server interface, which knows the account once it has logged in."""

    def session_settings(self) -> SessionSettings:
        """Settings for the session of the logged-in account."""


@dataclass(eq=False)
class Upload:
    """An upload in progress: the hidden file and the name it will get."""

    target: Target
    temp: Path
    fd: int
    # True when the hidden name was flushed to disk before the upload began.
    named_on_disk: bool
    problem: str = ""


@dataclass
class Download:
    """A file open for reading, and how much of it was read from the start."""

    target: Target
    fd: int
    size: int
    read_up_to: int = 0


@dataclass
class Listing:
    """A folder listing handed out in portions."""

    entries: list[tuple[str, Attributes]] = field(default_factory=list)


Handle = Upload | Download | Listing


class SftpSession(paramiko.SubsystemHandler):
    """The ``sftp`` subsystem for one authenticated channel."""

    def __init__(
        self,
        channel: paramiko.Channel,
        name: str,
        server: paramiko.ServerInterface,
    ) -> None:
        super().__init__(channel, name, server)
        if not isinstance(server, SettingsSource):
            raise TypeError("the SSH server interface must provide session settings")
        settings = server.session_settings()
        self.settings = settings
        self.view = settings.view
        self.recorder = settings.recorder
        self.handles: dict[bytes, Handle] = {}
        self.next_handle = 0
        self.end_reason = "client closed"
        self.denials = 0
        self.handlers = self._handler_table()
        self.channel = channel
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._input = bytearray()
        self._queue: deque[bytes | Message] = deque()
        self._draining = False
        self._client_done = False
        self._ended = False
        self._idle_since = time.monotonic()
        # Small uploads written to since the last replies went out.
        self._written: set[Upload] = set()
        transport = channel.get_transport()
        if not isinstance(transport, GatewayTransport):
            raise TypeError("an SFTP session needs the gateway's SSH transport")
        transport.attach(channel, self)

    def _handler_table(self) -> dict[int, Callable[[int, Reader], bytes]]:
        return {
            Kind.OPEN: self.open,
            Kind.CLOSE: self.close,
            Kind.READ: self.read,
            Kind.WRITE: self.write,
            Kind.LSTAT: self.stat,
            Kind.STAT: self.stat,
            Kind.FSTAT: self.fstat,
            Kind.SETSTAT: self.setstat,
            Kind.FSETSTAT: self.fsetstat,
            Kind.OPENDIR: self.opendir,
            Kind.READDIR: self.readdir,
            Kind.REMOVE: self.remove,
            Kind.MKDIR: self.mkdir,
            Kind.RMDIR: self.rmdir,
            Kind.REALPATH: self.realpath,
            Kind.RENAME: self.rename,
            Kind.READLINK: self.readlink,
            Kind.SYMLINK: self.symlink,
            Kind.EXTENDED: self.extended,
        }

    # The channel: requests arrive in the transport thread (see
    # gateway.sftp.transport) and are answered there while replies can be sent
    # without waiting. When they cannot (a key exchange, the client's window
    # full), replies queue up and this session's own thread sends them; until
    # the queue is empty no new request is answered, and the bytes read are not
    # granted back to the client's window, which holds it to what it has sent.

    def start_subsystem(
        self, name: str, transport: paramiko.Transport, channel: paramiko.Channel
    ) -> None:
        """Send what queues up, and end the session when it is over or idle."""
        # Bounds a send waiting for the client's window, as idleness would.
        channel.settimeout(self.settings.idle_timeout)
        with self._lock:
            while not self._finished():
                if self._queue:
                    self._send_queued()
                elif self._draining:
                    self._draining = False
                    self._work(inline=False)
                else:
                    self._wake.wait(self._until_idle())

    def _finished(self) -> bool:
        if self._ended:
            return True
        if self._idle_since + self.settings.idle_timeout <= time.monotonic():
            self._end("idle timeout")
        elif self._client_done and not self._queue and not self._draining:
            self._end(self.end_reason)
        return self._ended

    def _until_idle(self) -> float:
        return max(self._idle_since + self.settings.idle_timeout - time.monotonic(), 0)

    def _send_queued(self) -> None:
        # The item leaves the queue only once sent: while the queue is not
        # empty, the transport thread answers nothing, so replies keep order.
        item = self._queue[0]
        self._lock.release()
        try:
            self._send(item)
            reason = ""
        except TimeoutError:
            reason = "idle timeout"
        except (OSError, EOFError, paramiko.SSHException):
            reason = "connection lost"
        finally:
            self._lock.acquire()
        self._queue.popleft()
        if reason:
            self._end(reason)
        else:
            self._idle_since = time.monotonic()

    def _send(self, item: bytes | Message) -> None:
        if isinstance(item, Message):
            send_message(self.channel, item)
        else:
            self.channel.sendall(item)

    def received(self, data: bytes) -> None:
        """Data from the client, in the transport thread: answer what is complete."""
        with self._lock:
            if self._ended:
                return
            self._idle_since = time.monotonic()
            self._input += data
            if self._queue or self._draining:
                self._draining = True
                self._wake.notify()
            else:
                self._work(inline=True)

    def client_done(self) -> None:
        """EOF or close from the client: end once every reply has gone out."""
        with self._lock:
            self._client_done = True
            if not self._queue and not self._draining:
                self._end(self.end_reason)

    def connection_lost(self) -> None:
        """The transport stopped: end now."""
        with self._lock:
            self._end(self.end_reason if self._client_done else "connection lost")

    def _work(self, *, inline: bool) -> None:
        # Called with the lock held. Answers a portion of the complete requests
        # at a time, so that replies never pile up beyond REPLY_BUDGET.
        while not self._ended:
            items = self._answer_portion()
            if not items:
                break
            replies = sum(len(i) for i in items if isinstance(i, bytes))
            if not inline or not can_send_now(self.channel, replies):
                self._queue.extend(items)
                self._draining = True
                self._wake.notify()
                break
            try:
                for item in items:
                    self._send(item)
            except (OSError, EOFError, paramiko.SSHException):
                self._end("connection lost")
        self._write_back()

    def _write_back(self) -> None:
        # The replies are out (or queued) and the client is busy with them: a
        # good moment to have the disk start on the data the close will flush.
        for upload in self._written:
            if upload.fd >= 0:
                start_writeback(upload.fd)
        self._written.clear()

    def _answer_portion(self) -> list[bytes | Message]:
        before = len(self._input)
        try:
            replies = self._answer_complete_requests(self._input)
        except MalformedError as exc:
            self._end(f"protocol violation: {exc}")
            return []
        except TooManyDenialsError:
            self._end("too many refused requests")
            return []
        except Exception as exc:  # the catch-all: log, and end this session only
            self._end(f"internal error ({type(exc).__name__})")
            self.recorder.failed(self.end_reason)
            return []
        if len(self._input) == before:
            return []  # no whole request yet
        grant = consumed(self.channel, before - len(self._input))
        return [i for i in (grant, replies) if i]

    def _end(self, reason: str) -> None:
        # Called with the lock held.
        if not self._ended:
            self._ended = True
            self.end_reason = reason
            self._wake.notify()

    def finish_subsystem(self) -> None:
        """Drop unfinished uploads and close every handle."""
        with self._lock:
            self._ended = True
            for handle in self.handles.values():
                self._discard(handle)
            self.handles.clear()
        try:
            super().finish_subsystem()
            # The client is gone; renames its uploads left unflushed go to disk.
            self.settings.slots.flush()
        finally:
            self.settings.on_end(self.end_reason)

    def _answer_complete_requests(self, buffer: bytearray) -> bytes:
        replies: list[bytes] = []
        size = 0
        while len(buffer) >= 4 and size < REPLY_BUDGET:
            length = int.from_bytes(buffer[:4], "big")
            if not 5 <= length <= wire.MAX_PACKET:
                raise MalformedError("request length out of range")
            if len(buffer) < 4 + length:
                break
            body = bytes(buffer[4 : 4 + length])
            del buffer[: 4 + length]
            replies.append(self._answer(body))
            size += len(replies[-1])
        return b"".join(replies)

    def _answer(self, body: bytes) -> bytes:
        if body[0] == Kind.INIT:
            return self._version()
        reader = Reader(body[1:])
        request_id = reader.u32()
        handler = self.handlers.get(body[0])
        if handler is None:
            return wire.status(request_id, Status.OP_UNSUPPORTED)
        try:
            return handler(request_id, reader)
        except DeniedError as denied:
            operation = Kind(body[0]).name.lower()
            self.recorder.denied(operation, denied.reason, denied.path)
            self.denials += 1
            if self.denials > MAX_DENIALS:
                raise TooManyDenialsError from None
            return wire.status(request_id, Status.PERMISSION_DENIED)
        except MalformedError:
            return wire.status(request_id, Status.BAD_MESSAGE)
        except OSError as exc:
            return wire.status(request_id, _status_of(exc))

    def _version(self) -> bytes:
        fields = b"".join(wire.string(k) + wire.string(v) for k, v in _EXTENSIONS)
        body = bytes([Kind.VERSION]) + wire.u32(wire.VERSION) + fields
        return wire.u32(len(body)) + body

    # Handles.

    def _add(self, handle: Handle) -> bytes:
        if len(self.handles) >= wire.MAX_OPEN_HANDLES:
            self._discard(handle)
            raise DeniedError("too many open handles")
        self.next_handle += 1
        key = str(self.next_handle).encode()
        self.handles[key] = handle
        return key

    def _handle(self, reader: Reader) -> Handle:
        handle = self.handles.get(reader.string())
        if handle is None:
            raise MalformedError("unknown handle")
        return handle

    def _discard(self, handle: Handle) -> None:
        if isinstance(handle, Upload):
            os.close(handle.fd)
            handle.fd = -1
            handle.temp.unlink(missing_ok=True)
        elif isinstance(handle, Download):
            os.close(handle.fd)

    # File operations, each: guards, act, record.

    def open(self, request_id: int, reader: Reader) -> bytes:
        """OPEN: an upload into the inbox, or a download of a listed file."""
        raw = reader.string()
        flags = reader.u32()
        reader.attributes()
        need = rights_for_open(flags)
        target = self.view.file(raw, need)
        if flags & _APPEND:
            raise DeniedError("appending is not offered", target.virtual)
        if Right.WRITE in need:
            handle: Handle = self._start_upload(target)
        else:
            handle = self._start_download(target)
        return wire.packet(Kind.HANDLE, request_id, wire.string(self._add(handle)))

    def _start_upload(self, target: Target) -> Upload:
        if os.path.lexists(target.real):
            raise DeniedError("a file of that name is waiting already", target.virtual)
        slot = self.settings.slots.take(target.real.parent)
        return Upload(target, slot.path, slot.fd, slot.named_on_disk)

    def _start_download(self, target: Target) -> Download:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(target.real, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DeniedError("file is a link", target.virtual) from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise DeniedError("not a regular file", target.virtual)
        return Download(target, fd, info.st_size)

    def close(self, request_id: int, reader: Reader) -> bytes:
        """CLOSE: completes an upload, or records a finished delivery."""
        key = reader.string()
        handle = self.handles.pop(key, None)
        if handle is None:
            raise MalformedError("unknown handle")
        if isinstance(handle, Upload):
            self._complete(handle)
        elif isinstance(handle, Download):
            os.close(handle.fd)
            self._downloaded(handle)
        return wire.status(request_id, Status.OK)

    def _complete(self, upload: Upload) -> None:
        published = False
        try:
            if upload.problem:
                raise DeniedError(upload.problem, upload.target.virtual)
            size = os.fstat(upload.fd).st_size
            sealed = self._make_durable(upload, size)
            os.close(upload.fd)
            upload.fd = -1
            _publish(upload.temp, upload.target, flush=not sealed)
            published = True
            if sealed:
                self.settings.slots.published(upload.target.real.parent)
        finally:
            if upload.fd >= 0:
                os.close(upload.fd)
            if not published:
                upload.temp.unlink(missing_ok=True)
        self._arrived(upload.target, size)

    @staticmethod
    def _make_durable(upload: Upload, size: int) -> bool:
        # Data and size reach the disk before the final name appears. A sealed
        # small upload can be recovered from its slot, so the inbox folder's
        # flush may wait; True says so.
        assert upload.target.name is not None
        if upload.named_on_disk and seal(upload.fd, upload.target.name, size):
            return True
        os.fdatasync(upload.fd)
        return False

    def _arrived(self, target: Target, size: int) -> None:
        # A ".filepart" is not an upload yet: it becomes one when renamed.
        assert target.name is not None
        if not is_temporary_name(target.name):
            self.recorder.upload_completed(target.name, size)

    def _downloaded(self, download: Download) -> None:
        folder, name = download.target.folder, download.target.name
        if folder and folder.delivers and name and download.read_up_to >= download.size:
            self.recorder.delivered("downloaded", name, download.size)

    def write(self, request_id: int, reader: Reader) -> bytes:
        """WRITE: data for an upload, within the size limit."""
        handle = self._handle(reader)
        offset = reader.u64()
        data = reader.string()
        if not isinstance(handle, Upload):
            raise DeniedError("handle is not open for writing")
        if offset + len(data) > self.settings.max_upload_bytes:
            if not handle.problem:
                handle.problem = "upload exceeds the size limit"
                self.recorder.denied("write", handle.problem, handle.target.virtual)
            return wire.status(request_id, Status.FAILURE)
        try:
            _write_all(handle.fd, data, offset)
        except OSError as exc:
            # A lost write (disk full) must not become a file with a hole.
            handle.problem = f"write failed ({errno.errorcode.get(exc.errno or 0)})"
            raise
        # A small upload's data goes to the disk as soon as the reply is out
        # (see _write_back), so its close flushes little more than the inode.
        # Large uploads are left to their close's flush, as before.
        if offset + len(data) <= SMALL_UPLOAD_BYTES:
            self._written.add(handle)
        return wire.status(request_id, Status.OK)

    def read(self, request_id: int, reader: Reader) -> bytes:
        """READ: a chunk of a file open for reading."""
        handle = self._handle(reader)
        offset = reader.u64()
        length = min(reader.u32(), wire.MAX_DATA)
        if not isinstance(handle, Download):
            raise DeniedError("handle is not open for reading")
        data = os.pread(handle.fd, length, offset)
        if not data:
            return wire.status(request_id, Status.EOF)
        if offset <= handle.read_up_to:
            handle.read_up_to = max(handle.read_up_to, offset + len(data))
        return wire.packet(Kind.DATA, request_id, wire.string(data))

    def stat(self, request_id: int, reader: Reader) -> bytes:
        """STAT and LSTAT: folders always, files only where listing is allowed."""
        target = self.view.resolve(reader.string())
        if target.name is None:
            attributes = Attributes.folder()
        else:
            attributes = self._file_attributes(target)
        return wire.packet(Kind.ATTRS, request_id, attributes.encode())

    @staticmethod
    def _file_attributes(target: Target) -> Attributes:
        # Files in a folder without the list right are invisible, whether they
        # exist or not: clients stat an upload's name before they write it.
        assert target.folder is not None
        if Right.LIST not in target.folder.rights:
            raise FileNotFoundError(errno.ENOENT, "invisible")
        info = os.lstat(target.real)
        if not stat.S_ISREG(info.st_mode):
            raise DeniedError("not a regular file", target.virtual)
        return Attributes.of(info)

    def fstat(self, request_id: int, reader: Reader) -> bytes:
        """FSTAT: attributes of an open file."""
        handle = self._handle(reader)
        if isinstance(handle, Listing):
            raise DeniedError("handle is a folder listing")
        attributes = Attributes.of(os.fstat(handle.fd))
        return wire.packet(Kind.ATTRS, request_id, attributes.encode())

    def setstat(self, request_id: int, reader: Reader) -> bytes:
        """SETSTAT: refused; modes, owners and times are the gateway's."""
        target = self.view.resolve(reader.string())
        raise DeniedError("changing attributes is refused", target.virtual)

    def fsetstat(self, request_id: int, reader: Reader) -> bytes:
        """FSETSTAT: accepted and ignored on one's own upload (``put -p``)."""
        handle = self._handle(reader)
        reader.attributes()
        if not isinstance(handle, Upload):
            raise DeniedError("changing attributes is refused")
        return wire.status(request_id, Status.OK)

    def opendir(self, request_id: int, reader: Reader) -> bytes:
        """OPENDIR: the account's folders at ``/``, or a folder's files.

        A folder without the list right (the inbox) lists as empty, so that
        graphical clients can open it to drop files in.
        """
        target = self.view.folder(reader.string(), Right.NONE)
        if target.folder is None:
            entries = [(name, Attributes.folder()) for name in self.view.folders]
        elif Right.LIST in target.folder.rights:
            entries = _visible_files(target.real)
        else:
            entries = []
        key = self._add(Listing(entries))
        return wire.packet(Kind.HANDLE, request_id, wire.string(key))

    def readdir(self, request_id: int, reader: Reader) -> bytes:
        """READDIR: the next portion of a listing."""
        handle = self._handle(reader)
        if not isinstance(handle, Listing):
            raise MalformedError("handle is not a folder listing")
        portion = handle.entries[:_NAMES_PER_REPLY]
        del handle.entries[:_NAMES_PER_REPLY]
        if not portion:
            return wire.status(request_id, Status.EOF)
        names = [
            wire.string(n) + wire.string(a.long_name(n)) + a.encode()
            for n, a in portion
        ]
        return wire.packet(Kind.NAME, request_id, wire.u32(len(portion)), *names)

    def remove(self, request_id: int, reader: Reader) -> bytes:
        """REMOVE: a fetched receipt or outbox file."""
        target = self.view.file(reader.string(), Right.DELETE)
        info = os.lstat(target.real)
        if not stat.S_ISREG(info.st_mode):
            raise DeniedError("not a regular file", target.virtual)
        os.unlink(target.real)
        assert target.folder is not None and target.name is not None
        if target.folder.delivers:
            self.recorder.delivered("removed", target.name, info.st_size)
        return wire.status(request_id, Status.OK)

    def rename(self, request_id: int, reader: Reader) -> bytes:
        """RENAME and posix-rename: a finished ``.filepart`` to its real name."""
        source = self.view.file(reader.string(), Right.WRITE)
        target = self.view.file(reader.string(), Right.WRITE)
        assert source.name is not None and target.name is not None
        if source.folder != target.folder:
            raise DeniedError(
                "rename across folders", f"{source.virtual} -> {target.virtual}"
            )
        if not is_temporary_name(source.name):
            raise DeniedError(
                "only a temporary upload name can be renamed", source.virtual
            )
        info = os.lstat(source.real)
        if not stat.S_ISREG(info.st_mode):
            raise DeniedError("not a regular file", source.virtual)
        _publish(source.real, target)
        self._arrived(target, info.st_size)
        return wire.status(request_id, Status.OK)

    def mkdir(self, request_id: int, reader: Reader) -> bytes:
        """MKDIR: refused; the folders are fixed."""
        raise DeniedError("folders cannot be created", clean_or_blank(reader.string()))

    def rmdir(self, request_id: int, reader: Reader) -> bytes:
        """RMDIR: refused; the folders are fixed."""
        raise DeniedError("folders cannot be removed", clean_or_blank(reader.string()))

    def realpath(self, request_id: int, reader: Reader) -> bytes:
        """REALPATH: the cleaned virtual path; the client's working folder is /."""
        virtual = clean(reader.string())
        attributes = Attributes.folder()
        entry = wire.string(virtual) + wire.string(virtual) + attributes.encode()
        return wire.packet(Kind.NAME, request_id, wire.u32(1), entry)

    def readlink(self, request_id: int, reader: Reader) -> bytes:
        """READLINK: there are no links in a view."""
        raise DeniedError("links do not exist here", clean_or_blank(reader.string()))

    def symlink(self, request_id: int, reader: Reader) -> bytes:
        """SYMLINK: refused."""
        reader.string()
        raise DeniedError("symlink creation refused", clean_or_blank(reader.string()))

    def extended(self, request_id: int, reader: Reader) -> bytes:
        """EXTENDED: posix-rename and limits; hard links are refused."""
        name = reader.string()
        if name == b"posix-rename@openssh.com":
            return self.rename(request_id, reader)
        if name == b"limits@openssh.com":
            return self._limits(request_id)
        if name == b"hardlink@openssh.com":
            reader.string()
            raise DeniedError(
                "hardlink creation refused", clean_or_blank(reader.string())
            )
        return wire.status(request_id, Status.OP_UNSUPPORTED)

    @staticmethod
    def _limits(request_id: int) -> bytes:
        values = (wire.MAX_PACKET, wire.MAX_DATA, wire.MAX_DATA, wire.MAX_OPEN_HANDLES)
        fields = [wire.u64(v) for v in values]
        return wire.packet(Kind.EXTENDED_REPLY, request_id, *fields)


def _publish(source: Path, target: Target, *, flush: bool = True) -> None:
    try:
        rename_new(source, target.real)
    except FileExistsError:
        raise DeniedError(
            "a file of that name is waiting already", target.virtual
        ) from None
    if flush:
        fsync_dir(target.real.parent)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _visible_files(folder: Path) -> list[tuple[str, Attributes]]:
    entries = []
    with os.scandir(folder) as scan:
        for entry in scan:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            entries.append(
                (entry.name, Attributes.of(entry.stat(follow_symlinks=False)))
            )
    return sorted(entries)


def clean_or_blank(raw: bytes) -> str:
    """The cleaned path for the log, or an empty string if it cannot be cleaned."""
    try:
        return clean(raw)
    except DeniedError as denied:
        return denied.path


def _status_of(exc: OSError) -> Status:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return Status.NO_SUCH_FILE
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Status.PERMISSION_DENIED
    return Status.FAILURE
