"""Linux system calls that Python's ``os`` module does not offer.

Each is looked up once in the C library; where the library lacks it (another
kernel, an old glibc), the name is ``None`` and callers take their portable way.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

_AT_FDCWD = -100
RENAME_NOREPLACE = 1
# sync_file_range(2): start writing the range's dirty pages, do not wait.
_SYNC_FILE_RANGE_WRITE = 2


def _function(name: str, *argtypes: Any) -> Callable[..., int] | None:
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_renameat2 = _function(
    "renameat2",
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
)
_sync_file_range = _function(
    "sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint
)


def renameat2(source: bytes, target: bytes, flags: int) -> int | None:
    """``renameat2(2)``: 0, or an ``errno`` value; None where it is missing."""
    if _renameat2 is None:
        return None
    if _renameat2(_AT_FDCWD, source, _AT_FDCWD, target, flags) == 0:
        return 0
    return ctypes.get_errno()


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing *fd*'s unwritten data to disk, now.

    It does not wait for the disk and promises nothing: it only means that a
    later ``fsync`` finds less to write. Where the call is missing, or fails,
    nothing happens, and the ``fsync`` does all the work as it would anyway.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)
