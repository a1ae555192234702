"""Watching the inboxes for complete uploads.

A file counts as complete when the writer closes it after writing (inotify
``IN_CLOSE_WRITE``, watchdog's ``FileClosedEvent``) or when it is renamed into
the inbox from a name in the same folder (``FileMovedEvent``), which is how our
SFTP server and careful clients publish an upload. Hidden and temporary names
(:func:`gateway.spool.is_temporary_name`) are never queued.

Limits of what lies beneath, and how this module copes:

- inotify drops events when its queue overflows, and a file moved in from an
  unwatched folder arrives as a bare "created" event, which cannot be told
  apart from a file just opened for writing. Both are covered by a full scan of
  every inbox at start-up and every ``rescan_seconds``; a scan takes only files
  left unmodified for ``settle_seconds``, so a writer that keeps a file open is
  not overtaken.
- Event handlers run on the observer's thread, and an exception there stops
  it: handlers only hand the path to ``submit`` and log anything unexpected.
- The same file may be submitted twice (an event and a scan); the receiver
  deduplicates, and the claim itself is an atomic rename that only one can win.
"""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from gateway import logs
from gateway.spool import Spool, is_temporary_name

Submit = Callable[[str, Path], None]

_log = logs.get("watch")


def complete_uploads(inbox: Path, *, settle_seconds: float) -> list[Path]:
    """Regular, non-temporary files in *inbox* unmodified for *settle_seconds*."""
    horizon = time.time() - settle_seconds
    found = []
    try:
        entries = sorted(inbox.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        if is_temporary_name(path.name):
            continue
        try:
            status = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(status.st_mode) and status.st_mtime <= horizon:
            found.append(path)
    return found


class _InboxHandler(FileSystemEventHandler):
    """Turns watchdog events in one inbox into submissions."""

    def __init__(self, account: str, inbox: Path, submit: Submit) -> None:
        self.account = account
        self.inbox = inbox
        self.submit = submit

    def on_closed(self, event: FileSystemEvent) -> None:
        self._offer(event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        self._offer(event.dest_path)

    def _offer(self, raw: Any) -> None:
        try:
            path = Path(raw.decode() if isinstance(raw, bytes) else raw)
            if path.parent == self.inbox and not is_temporary_name(path.name):
                self.submit(self.account, path)
        except Exception as exc:  # an exception would stop the observer thread
            _log.error("watch.handler_failed", error=type(exc).__name__)


class InboxWatcher:
    """Watches every intermediary's inbox and rescans them periodically."""

    def __init__(
        self,
        spool: Spool,
        accounts: Iterable[str],
        submit: Submit,
        *,
        rescan_seconds: float,
        settle_seconds: float = 2.0,
    ) -> None:
        self.spool = spool
        self.submit = submit
        self.rescan_seconds = rescan_seconds
        self.settle_seconds = settle_seconds
        self._accounts: set[str] = set()
        self._observer: Any = Observer()
        self._stopping = threading.Event()
        self._rescanner = threading.Thread(
            target=self._rescan_loop, name="rescan", daemon=True
        )
        self._lock = threading.Lock()
        for account in accounts:
            self.watch(account)

    def start(self) -> None:
        """Start the observer, scan every inbox once, then rescan periodically."""
        self._observer.start()
        self.scan()
        self._rescanner.start()

    def stop(self) -> None:
        """Stop watching and rescanning."""
        self._stopping.set()
        self._observer.stop()
        self._observer.join(timeout=5)
        if self._rescanner.is_alive():
            self._rescanner.join(timeout=5)

    def watch(self, account: str) -> None:
        """Watch one more inbox (a new intermediary after a reload)."""
        with self._lock:
            if account in self._accounts:
                return
            inbox = self.spool.inbox(account)
            handler = _InboxHandler(account, inbox, self.submit)
            self._observer.schedule(handler, str(inbox), recursive=False)
            self._accounts.add(account)

    def scan(self) -> int:
        """Submit every complete upload found in the inboxes; how many."""
        with self._lock:
            accounts = sorted(self._accounts)
        count = 0
        for account in accounts:
            inbox = self.spool.inbox(account)
            for path in complete_uploads(inbox, settle_seconds=self.settle_seconds):
                self.submit(account, path)
                count += 1
        return count

    def _rescan_loop(self) -> None:
        interval = max(self.rescan_seconds, 0.5)
        while not self._stopping.wait(interval):
            try:
                self.scan()
            except Exception as exc:  # keep rescanning whatever one scan hit
                _log.error("watch.rescan_failed", error=type(exc).__name__)
