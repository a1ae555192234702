"""What the kernel's page cache holds of a file, for tests of what reached the disk."""

from __future__ import annotations

import ctypes

_CACHESTAT = 451  # the system call's number on every architecture


def dirty_pages(fd: int) -> int | None:
    """Pages of *fd*'s file not yet handed to the disk (``cachestat(2)``, Linux
    6.5); None where the kernel cannot tell."""
    libc = ctypes.CDLL(None, use_errno=True)
    window = (ctypes.c_uint64 * 2)(0, 0)
    counts = (ctypes.c_uint64 * 5)()
    if libc.syscall(_CACHESTAT, fd, window, counts, 0) != 0:
        return None
    return int(counts[1])
