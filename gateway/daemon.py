"""The gateway daemon: watcher, worker pool, recovery and housekeeping.

:class:`Daemon` ties the parts together. At start it takes the single-instance
lock (an ``fcntl`` lock on a file in the state folder), prepares the spool,
queues every upload a previous run left unfinished, starts the worker threads
and the inbox watcher, and, when configured, the embedded SFTP service.

The workers are threads: every OpenPGP operation is a ``gpg`` subprocess and
lxml releases the interpreter lock while it parses, so two workers keep two
cores busy. Each upload runs under the pipeline's catch-all, so one bad file
never stops a worker. Stopping lets every worker finish the upload in hand;
anything cut short by the time bound is resumed from the ledger at the next
start.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from gateway import __version__, logs
from gateway import config as config_module
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.errors import ConfigError, DaemonError
from gateway.ledger import Ledger, Upload
from gateway.pgp import OpenPgp
from gateway.pipeline import Pipeline
from gateway.pseudonym import Pseudonymiser
from gateway.spool import Spool
from gateway.watch import InboxWatcher

LOCK_FILE = "loonbrug.lock"
HOUSEKEEPING_SECONDS = 3600.0
_POLL_SECONDS = 0.2

_log = logs.get("daemon")


class InstanceLock:
    """An exclusive ``fcntl`` lock: one daemon per state folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`DaemonError` if another holds it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        handle = os.fdopen(fd, "r+", encoding="ascii")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise DaemonError(
                f"another loonbrug daemon is running (lock held on {self.path})"
            ) from exc
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock up."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass(frozen=True)
class _Task:
    """One unit of work for a worker: an inbox file or an unfinished upload."""

    run: Callable[[], object]
    path: Path | None = None


def _open_audit(config: Config, pgp: OpenPgp) -> Any:
    opener = getattr(AuditLog, "open", None)
    if opener is not None:
        return opener(config, pgp)
    return AuditLog(config.audit.dir)


class Daemon:
    """The long-running gateway process, minus signal handling."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._lock = InstanceLock(config.gateway.state_dir / LOCK_FILE)
        self._tasks: queue.Queue[_Task] = queue.Queue()
        self._pending: set[Path] = set()
        self._pending_lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._services: list[Any] = []
        self.ledger: Ledger | None = None
        self.pipeline: Pipeline | None = None
        self.watcher: InboxWatcher | None = None
        self.audit: Any = None

    # Life cycle

    def start(self) -> None:
        """Start everything; raises :class:`DaemonError` if already running."""
        self._lock.acquire()
        try:
            self._open_parts()
            self._start_parts()
        except BaseException:
            self.stop(timeout=10)
            raise
        self.audit.emit(
            "daemon.started", version=__version__, workers=self.config.gateway.workers
        )
        _log.info("daemon.started", workers=self.config.gateway.workers)

    def _start_parts(self) -> None:
        self._queue_unfinished()
        for n in range(self.config.gateway.workers):
            self._spawn(self._work, f"worker-{n + 1}")
        self.watcher = InboxWatcher(
            Spool(self.config.gateway.spool),
            self.config.intermediaries,
            self.submit,
            rescan_seconds=self.config.gateway.rescan_seconds,
        )
        self.watcher.start()
        self._spawn(self._housekeeping, "housekeeping")
        self._start_sftp()

    def _open_parts(self) -> None:
        config = self.config
        Spool(config.gateway.spool).prepare(
            config.intermediaries, config.municipalities
        )
        self.ledger = Ledger(config.ledger_path)
        pgp = OpenPgp(
            config.gateway.gnupg_home, timeout=config.gateway.gpg_timeout_seconds
        )
        self.audit = _open_audit(config, pgp)
        self.pipeline = Pipeline(
            config,
            ledger=self.ledger,
            pgp=pgp,
            audit=self.audit,
            pseudonymiser=Pseudonymiser.load(config.audit.pseudonym_key),
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the uploads in hand and stop; False if *timeout* cut it short."""
        if self._stopped.is_set():
            return True
        self._stopping.set()
        if self.watcher is not None:
            self.watcher.stop()
        for service in reversed(self._services):
            with contextlib.suppress(Exception):
                service.stop()
        finished = self._join(timeout)
        if not finished:
            _log.warning("daemon.stop_timeout", seconds=timeout)
        self._close(finished)
        self._stopped.set()
        return finished

    def _join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return not any(thread.is_alive() for thread in self._threads)

    def _close(self, finished: bool) -> None:
        if self.audit is not None:
            self.audit.emit("daemon.stopped", clean="yes" if finished else "no")
            with contextlib.suppress(Exception):
                self.audit.close()
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline.pgp.close()
        if self.ledger is not None and finished:
            self.ledger.close()
        self._lock.release()
        _log.info("daemon.stopped", clean=finished)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the daemon has stopped; False on *timeout*."""
        return self._stopped.wait(timeout)

    # Work

    def submit(self, account: str, path: Path) -> None:
        """Queue an inbox file, unless it is queued or in hand already."""
        pipeline = self.pipeline
        if pipeline is None or self._stopping.is_set():
            return
        with self._pending_lock:
            if path in self._pending:
                return
            self._pending.add(path)
        self._tasks.put(_Task(lambda: pipeline.process(account, path), path))

    def _queue_unfinished(self) -> None:
        assert self.ledger is not None and self.pipeline is not None
        pipeline = self.pipeline
        unfinished = self.ledger.unfinished()
        for upload in unfinished:
            self._tasks.put(_Task(_resumer(pipeline, upload)))
        if unfinished:
            _log.info("daemon.recovering", uploads=len(unfinished))

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                task = self._tasks.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            try:
                task.run()
            except Exception as exc:  # the pipeline's own guard failed; go on
                _log.error("worker.task_failed", error=type(exc).__name__)
            finally:
                if task.path is not None:
                    with self._pending_lock:
                        self._pending.discard(task.path)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def idle(self) -> bool:
        """True when no upload is queued or in hand."""
        with self._pending_lock:
            return not self._pending and self._tasks.empty()

    # Housekeeping

    def _housekeeping(self) -> None:
        while True:
            self._run_retention()
            if self._stopping.wait(HOUSEKEEPING_SECONDS):
                return

    def _run_retention(self) -> None:
        try:
            module = importlib.import_module("gateway.retention")
        except ModuleNotFoundError:
            return
        try:
            job = module.RetentionJob(self.config, self.audit, self.ledger)
            purged = job.run_once(datetime.now(UTC))
            _log.info("retention.done", purged=purged)
        except Exception as exc:  # retention must never take the daemon down
            _log.error("retention.failed", error=type(exc).__name__)

    def _start_sftp(self) -> None:
        if not self.config.sftp.enabled:
            return
        from gateway.sftp.service import SftpService  # noqa: PLC0415

        service = SftpService(self.config, self.audit, self.ledger)
        service.start()
        self._services.append(service)

    # Reload

    def reload(self) -> bool:
        """Load the configuration file again; keep the old one if it is bad."""
        try:
            fresh = config_module.load(self.config.path)
        except ConfigError as exc:
            problems = str(exc).count("\n") or 1
            _log.error("config.reload_refused", problems=problems)
            return False
        if (fresh.gateway.spool, fresh.gateway.state_dir) != (
            self.config.gateway.spool,
            self.config.gateway.state_dir,
        ):
            _log.error("config.reload_refused", reason="spool or state_dir changed")
            return False
        self._apply(fresh)
        return True

    def _apply(self, fresh: Config) -> None:
        Spool(fresh.gateway.spool).prepare(fresh.intermediaries, fresh.municipalities)
        self.config = fresh
        if self.pipeline is not None:
            self.pipeline.config = fresh
        if self.watcher is not None:
            for account in fresh.intermediaries:
                self.watcher.watch(account)
        for service in self._services:
            reload = getattr(service, "reload", None)
            if reload is not None:
                reload(fresh)
        self.audit.emit(
            "config.reloaded",
            intermediaries=sorted(fresh.intermediaries),
            municipalities=sorted(fresh.municipalities),
        )
        _log.info(
            "config.reloaded",
            intermediaries=len(fresh.intermediaries),
            municipalities=len(fresh.municipalities),
        )


def _resumer(pipeline: Pipeline, upload: Upload) -> Callable[[], None]:
    return lambda: pipeline.resume(upload)
