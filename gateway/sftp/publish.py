"""Giving a finished upload its final name without ever replacing a file.

``rename(2)`` replaces an existing target silently, which would drop an upload
the gateway has not claimed yet. Linux offers ``renameat2(2)`` with
``RENAME_NOREPLACE`` (since 3.15, glibc 2.28), which fails with ``EEXIST``
instead and, being a rename, reaches the inbox watcher as a move event. Where the
file system or C library lacks it, a lock held by the whole process around
"check, then rename" gives the same answer, since this process is the only one
that writes into the inboxes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from pathlib import Path

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_fallback_lock = threading.Lock()


def _load_renameat2() -> object | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def rename_new(source: Path, target: Path) -> None:
    """Rename *source* to *target*; ``FileExistsError`` if *target* exists."""
    if _renameat2 is not None and callable(_renameat2):
        result = _renameat2(
            _AT_FDCWD,
            os.fsencode(source),
            _AT_FDCWD,
            os.fsencode(target),
            _RENAME_NOREPLACE,
        )
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), str(target))
    with _fallback_lock:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "file exists", str(target))
        os.rename(source, target)
