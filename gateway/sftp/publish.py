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

import errno
import os
import threading
from pathlib import Path

from gateway.sftp.kernel import RENAME_NOREPLACE, renameat2

_fallback_lock = threading.Lock()


def rename_new(source: Path, target: Path) -> None:
    """Rename *source* to *target*; ``FileExistsError`` if *target* exists."""
    code = renameat2(os.fsencode(source), os.fsencode(target), RENAME_NOREPLACE)
    if code == 0:
        return
    if code is not None and code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        raise OSError(code, os.strerror(code), str(target))
    with _fallback_lock:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "file exists", str(target))
        os.rename(source, target)
