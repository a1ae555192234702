"""The jailed view of one account: every path a client sends goes through here.

The ladder, the same for every operation (after SFTPGo):

1. clean the path: raw bytes must be UTF-8 without NUL or control characters;
   relative paths start at ``/``; ``.`` and ``..`` are folded, and ``..`` never
   climbs above ``/``;
2. resolve it inside the view: ``/``, ``/<folder>`` or ``/<folder>/<name>``,
   where the folder is one of the account's and the name is a plain, visible
   file name; the real folder is compared as a path, never as a string prefix;
3. check the right the operation needs (for OPEN, derived from its flags);

then the session acts and records. A refusal raises :class:`DeniedError` with the
specific reason for the audit event; the client only hears "permission denied".
The real file is always opened with ``O_NOFOLLOW``, so a link planted in a spool
folder by someone else leads nowhere either, and each request checks that the
spool folder is still the one the session started with (device and inode), so
a folder swapped for a link by someone with shell access is refused too.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.sftp.accounts import Folder, Right
from gateway.sftp.protocol import OpenFlag

MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The rights an OPEN needs, by (reads, writes), built once: combining Flag
# members on every request costs more than the rest of the test.
_READING = OpenFlag.READ.value
_WRITING = (
    OpenFlag.WRITE | OpenFlag.APPEND | OpenFlag.CREATE | OpenFlag.TRUNCATE
).value
_OPEN_RIGHTS = {
    (False, False): Right.NONE,
    (True, False): Right.READ,
    (False, True): Right.WRITE,
    (True, True): Right.READ | Right.WRITE,
}


class DeniedError(Exception):
    """An operation refused by a guard; the message is the reason for the log."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


@dataclass(frozen=True)
class Target:
    """A cleaned virtual path and what it stands for in the account's view."""

    virtual: str
    folder: Folder | None = None
    name: str | None = None

    @property
    def is_root(self) -> bool:
        """True for ``/``, the list of the account's folders."""
        return self.folder is None

    @property
    def is_folder(self) -> bool:
        """True for one of the account's folders itself."""
        return self.folder is not None and self.name is None

    @functools.cached_property
    def real(self) -> Path:
        """The real file or folder; only for targets inside a folder."""
        if self.folder is None:
            raise DeniedError("no real path for the root", self.virtual)
        return self.folder.real / self.name if self.name else self.folder.real


def clean(raw: bytes) -> str:
    """The canonical virtual path for *raw*, or :class:`DeniedError`."""
    if b"\x00" in raw:
        raise DeniedError("NUL byte in path", _shown(raw))
    if len(raw) > MAX_PATH_BYTES:
        raise DeniedError("path too long", _shown(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DeniedError("path is not valid UTF-8", _shown(raw)) from None
    if _CONTROL.search(text):
        raise DeniedError("control character in path", _shown(raw))
    parts: list[str] = []
    for part in text.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def _shown(raw: bytes) -> str:
    # How a refused path appears in the log: its start, escaped.
    return printable(raw[:200].decode("utf-8", "backslashreplace"))


def printable(text: str) -> str:
    """*text* with control characters escaped, safe for one log line."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


class View:
    """The folders one account sees, and the guards in front of them."""

    def __init__(self, folders: Mapping[str, Folder]) -> None:
        self.folders = folders
        self._identities = {name: _identity(f.real) for name, f in folders.items()}

    def resolve(self, raw: bytes) -> Target:
        """Clean *raw* and place it in the view (ladder steps 1 and 2)."""
        virtual = clean(raw)
        parts = [p for p in virtual.split("/") if p]
        if not parts:
            return Target(virtual)
        folder = self.folders.get(parts[0])
        if folder is None:
            raise DeniedError("outside the account's folders", virtual)
        self._check_containment(folder, virtual)
        if len(parts) == 1:
            return Target(virtual, folder)
        if len(parts) > 2:
            raise DeniedError("subfolders do not exist", virtual)
        name = parts[1]
        if name.startswith("."):
            raise DeniedError("hidden names are reserved", virtual)
        if len(name.encode()) > MAX_NAME_BYTES:
            raise DeniedError("name too long", virtual)
        return Target(virtual, folder, name)

    def file(self, raw: bytes, need: Right) -> Target:
        """A file inside a folder on which the account holds *need*."""
        target = self.resolve(raw)
        if target.folder is None or target.name is None:
            raise DeniedError("not a file", target.virtual)
        require(target, need)
        return target

    def folder(self, raw: bytes, need: Right) -> Target:
        """The root or one of the folders, with *need* on a folder."""
        target = self.resolve(raw)
        if target.name is not None:
            raise DeniedError("not a folder", target.virtual)
        if target.folder is not None:
            require(target, need)
        return target

    def _check_containment(self, folder: Folder, virtual: str) -> None:
        # The spool folder must still be the very folder it was when the session
        # began: same device and inode, a real folder, not a link.
        try:
            info = os.lstat(folder.real)
        except OSError:
            raise DeniedError("spool folder is missing", virtual) from None
        identity = (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None
        if identity is None or identity != self._identities.get(folder.name):
            raise DeniedError("spool folder moved or replaced", virtual)


def _identity(real: Path) -> tuple[int, int] | None:
    """Device and inode of *real*, if it is a folder reached without any link."""
    if Path(os.path.realpath(real)) != real:
        return None
    try:
        info = os.lstat(real)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def require(target: Target, need: Right) -> None:
    """Ladder step 3: the folder grants every right in *need*."""
    assert target.folder is not None
    granted = target.folder.rights
    # Granted is the common case, and a Flag complement is costly to build.
    if need & granted == need:
        return
    missing = need & ~granted
    names = ",".join(sorted(r.name or "" for r in Right if r in missing and r))
    raise DeniedError(
        f"no {names.lower()} right on /{target.folder.name}", target.virtual
    )


def rights_for_open(flags: int) -> Right:
    """The rights an OPEN needs, from its flags rather than its intent."""
    reading = bool(flags & _READING or not flags)
    return _OPEN_RIGHTS[reading, bool(flags & _WRITING)]
