"""The SFTP version 3 wire format (draft-ietf-secsh-filexfer-02).

Only what the server needs: packet framing, a reader for request fields, a
writer for replies, and file attributes. Paths arrive as raw bytes and stay raw
until :mod:`gateway.sftp.jail` has cleaned them: the draft does not promise
UTF-8, and a hostile client sends whatever it likes.
"""

from __future__ import annotations

import stat
import struct
import time
from dataclasses import dataclass
from enum import IntEnum, IntFlag

VERSION = 3
# The largest request we accept. OpenSSH's client never sends more than 256 KiB
# (SFTP_MAX_MSG_LENGTH in sftp-common.h); anything larger is an attack.
MAX_PACKET = 256 * 1024 + 1024
# What the limits@openssh.com reply offers: large chunks mean fewer round trips.
MAX_DATA = 255 * 1024
MAX_OPEN_HANDLES = 64

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEADER = struct.Struct(">IBI")


class Kind(IntEnum):
    """Packet types."""

    INIT = 1
    VERSION = 2
    OPEN = 3
    CLOSE = 4
    READ = 5
    WRITE = 6
    LSTAT = 7
    FSTAT = 8
    SETSTAT = 9
    FSETSTAT = 10
    OPENDIR = 11
    READDIR = 12
    REMOVE = 13
    MKDIR = 14
    RMDIR = 15
    REALPATH = 16
    STAT = 17
    RENAME = 18
    READLINK = 19
    SYMLINK = 20
    STATUS = 101
    HANDLE = 102
    DATA = 103
    NAME = 104
    ATTRS = 105
    EXTENDED = 200
    EXTENDED_REPLY = 201


class Status(IntEnum):
    """Status codes of a STATUS reply."""

    OK = 0
    EOF = 1
    NO_SUCH_FILE = 2
    PERMISSION_DENIED = 3
    FAILURE = 4
    BAD_MESSAGE = 5
    OP_UNSUPPORTED = 8


STATUS_TEXT = {
    Status.OK: "Success",
    Status.EOF: "End of file",
    Status.NO_SUCH_FILE: "No such file",
    Status.PERMISSION_DENIED: "Permission denied",
    Status.FAILURE: "Failure",
    Status.BAD_MESSAGE: "Bad message",
    Status.OP_UNSUPPORTED: "Operation unsupported",
}


class OpenFlag(IntFlag):
    """The pflags of an OPEN request."""

    READ = 0x01
    WRITE = 0x02
    APPEND = 0x04
    CREATE = 0x08
    TRUNCATE = 0x10
    EXCLUSIVE = 0x20


class AttrFlag(IntFlag):
    """Which fields an attribute block carries."""

    SIZE = 0x01
    UIDGID = 0x02
    PERMISSIONS = 0x04
    ACMODTIME = 0x08
    EXTENDED = 0x80000000


# Plain integers for the tests made on every request: an operation on IntFlag
# members builds a new flag object, many times the cost of the bit test.
_ATTR_SIZE = AttrFlag.SIZE.value
_ATTR_UIDGID = AttrFlag.UIDGID.value
_ATTR_PERMISSIONS = AttrFlag.PERMISSIONS.value
_ATTR_ACMODTIME = AttrFlag.ACMODTIME.value
_ATTR_EXTENDED = AttrFlag.EXTENDED.value
_ATTRS_REPORTED = _ATTR_SIZE | _ATTR_PERMISSIONS | _ATTR_ACMODTIME


class MalformedError(Exception):
    """A request that does not follow the wire format."""


class Reader:
    """Reads the fields of one request body, refusing to read past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def _take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise MalformedError("request is shorter than its fields")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u32(self) -> int:
        """An unsigned 32-bit integer."""
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def u64(self) -> int:
        """An unsigned 64-bit integer."""
        value: int = _U64.unpack(self._take(8))[0]
        return value

    def string(self) -> bytes:
        """A length-prefixed byte string."""
        return self._take(self.u32())

    def attributes(self) -> None:
        """Skip an attribute block: the server never applies a client's attributes."""
        flags = self.u32()
        if flags & _ATTR_SIZE:
            self.u64()
        if flags & _ATTR_UIDGID:
            self._take(8)
        if flags & _ATTR_PERMISSIONS:
            self.u32()
        if flags & _ATTR_ACMODTIME:
            self._take(8)
        if flags & _ATTR_EXTENDED:
            for _ in range(self.u32()):
                self.string()
                self.string()


def u32(value: int) -> bytes:
    """An unsigned 32-bit integer field."""
    return _U32.pack(value)


def u64(value: int) -> bytes:
    """An unsigned 64-bit integer field."""
    return _U64.pack(value)


def string(value: bytes | str) -> bytes:
    """A length-prefixed string field."""
    raw = value.encode() if isinstance(value, str) else value
    return _U32.pack(len(raw)) + raw


def packet(kind: Kind, request_id: int, *fields: bytes) -> bytes:
    """A whole reply packet with its length prefix."""
    body = b"".join(fields)
    return _HEADER.pack(len(body) + 5, kind, request_id) + body


def status(request_id: int, code: Status) -> bytes:
    """A STATUS reply with the standard text for *code*."""
    return packet(Kind.STATUS, request_id, _STATUS_FIELDS[code])


# Code, message and (empty) language tag: the same bytes in every reply.
_STATUS_FIELDS = {
    code: u32(code) + string(text) + string("") for code, text in STATUS_TEXT.items()
}


@dataclass(frozen=True)
class Attributes:
    """The attributes the server reports: size, mode and times, no owners."""

    size: int
    mode: int
    mtime: int

    @classmethod
    def of(cls, info: object) -> Attributes:
        """Attributes of an ``os.stat_result``."""
        st_size: int = getattr(info, "st_size", 0)
        st_mode: int = getattr(info, "st_mode", 0)
        st_mtime: float = getattr(info, "st_mtime", 0.0)
        return cls(size=st_size, mode=st_mode, mtime=int(st_mtime))

    @classmethod
    def folder(cls, mtime: int = 0) -> Attributes:
        """Attributes of one of the virtual folders."""
        return cls(size=0, mode=stat.S_IFDIR | 0o700, mtime=mtime)

    def encode(self) -> bytes:
        """The attribute block on the wire."""
        return (
            u32(_ATTRS_REPORTED)
            + u64(self.size)
            + u32(self.mode)
            + u32(self.mtime)
            + u32(self.mtime)
        )

    def long_name(self, name: str) -> str:
        """An ``ls -l`` style line, which some clients show as is."""
        when = time.strftime("%b %d %H:%M", time.gmtime(self.mtime))
        mode = stat.filemode(self.mode)
        return f"{mode}    1 loonbrug loonbrug {self.size:>12} {when} {name}"
