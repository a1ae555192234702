"""The SFTP service: listening socket, host key, algorithms, connection threads.

Each accepted connection runs in its own thread under a catch-all: whatever one
client does, the error is logged, its connection closed, and no other client
notices. Paramiko adds a transport thread per connection, which also answers
the SFTP requests (:mod:`gateway.sftp.transport`), and a thread per SFTP session,
which sends what cannot be sent at once and watches for idleness.

Algorithms (see docs/sftp.md): paramiko 5 no longer offers ``ssh-rsa`` SHA-1
signatures, ``diffie-hellman-group1``/``group14-sha1`` or group exchange with
SHA-1; what is left weak (CBC ciphers, 3DES, SHA-1 and MD5 MACs) is disabled
here, and the strict key exchange of OpenSSH 9.6 (``kex-strict-s-v00@openssh.com``,
the Terrapin fix, CVE-2023-48795) is offered and enforced when the client offers
it too (paramiko's ``strict_kex``, on by default since 3.4).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import cast

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import logs
from gateway.audit import AuditSink
from gateway.config import Config
from gateway.errors import SftpError
from gateway.sftp.accounts import load_accounts
from gateway.sftp.events import DeliveryLedger, Recorder
from gateway.sftp.readahead import ReadAheadSocket
from gateway.sftp.server import Budgets, Gatekeeper, Limits
from gateway.sftp.session import SftpSession
from gateway.sftp.slots import UPLOAD_PREFIX, SlotPool, recover
from gateway.sftp.transport import GatewayTransport, check_paramiko
from gateway.spool import Spool, make_private_dir

DISABLED_ALGORITHMS = {
    "ciphers": ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc"],
    "macs": ["hmac-sha1", "hmac-md5", "hmac-sha1-96", "hmac-md5-96"],
    # Group exchange needs a moduli file the gateway does not ship; paramiko
    # would offer it anyway and then fail the handshake of a client choosing it.
    "kex": ["diffie-hellman-group-exchange-sha256"],
}
# Large channel windows and packets: a 100 MB upload then costs fewer window
# adjustments and fewer, larger packets through paramiko's Python code.
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET_SIZE = 256 * 1024
_POLL_SECONDS = 0.5
MAX_CONNECTIONS = 256


class SftpService:
    """The embedded SFTP server of the gateway."""

    def __init__(
        self, config: Config, audit: AuditSink, ledger: DeliveryLedger | None = None
    ) -> None:
        self.config = config
        self.audit = audit
        self.ledger = ledger
        self.accounts = load_accounts(config)
        self.budgets = Budgets(config.sftp)
        self.limits = Limits.of(config)
        self.log = logs.get("sftp")
        self.slots = SlotPool()
        self.address: tuple[str, int] = (config.sftp.listen, config.sftp.port)
        self._configured_address = self.address
        self._listener: socket.socket | None = None
        self._host_key: paramiko.PKey | None = None
        self._acceptor: threading.Thread | None = None
        self._connections: dict[str, tuple[threading.Thread, paramiko.Transport]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The port listened on (the real one when the configuration says 0)."""
        return self.address[1]

    @property
    def host_key(self) -> paramiko.PKey:
        """The server's host key (loaded by :meth:`start`)."""
        if self._host_key is None:
            raise SftpError("the SFTP service has not been started")
        return self._host_key

    def start(self) -> None:
        """Prepare the folders and host key, listen, and return once listening."""
        # Paramiko logs every failed handshake with a traceback; the service
        # records those itself (sftp.handshake_failed), once, without one.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
        check_paramiko()
        Spool(self.config.gateway.spool).prepare(
            self.config.intermediaries, self.config.municipalities
        )
        self._remove_stale_uploads()
        self._host_key = load_or_create_host_key(self.config.sftp.host_key)
        self._listener = self._listen()
        self._stopping.clear()
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="sftp-accept", daemon=True
        )
        self._acceptor.start()
        self.log.info("sftp.listening", host=self.address[0], port=self.address[1])

    def _remove_stale_uploads(self) -> None:
        # Hidden upload files of a previous run that ended without closing its
        # sessions (a crash, a power cut): their clients never got an answer,
        # except for sealed slots, whose clients did (gateway.sftp.slots).
        spool = Spool(self.config.gateway.spool)
        inboxes = [spool.inbox(a) for a in self.config.intermediaries]
        for name in recover(inboxes):
            self.log.warning("sftp.upload_recovered", file=name)
        for account in self.config.intermediaries:
            for stale in spool.inbox(account).glob(f"{UPLOAD_PREFIX}*"):
                stale.unlink(missing_ok=True)
                self.log.info("sftp.stale_upload_removed", account=account)

    def reload(self, config: Config) -> None:
        """Use a reloaded configuration for every connection from now on.

        Accounts, keys, budgets and the upload limit change at once; sessions
        already open keep what they started with. A new listen address or
        port takes effect at the next start.
        """
        accounts = load_accounts(config)
        self.config = config
        self.accounts = accounts
        self.budgets.settings = config.sftp
        self.limits = Limits.of(config)
        if (config.sftp.listen, config.sftp.port) != self._configured_address:
            self.log.warning("sftp.listen_changed", applies="at the next start")

    def _listen(self) -> socket.socket:
        host, port = self.config.sftp.listen, self.config.sftp.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(64)
        except OSError as exc:
            listener.close()
            raise SftpError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.address = listener.getsockname()[:2]
        return listener

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, close every connection and wait for their threads."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        with self._lock:
            connections = list(self._connections.values())
        for _, transport in connections:
            transport.close()
        for thread, _ in connections:
            thread.join(timeout)
        self.slots.drain()
        self.log.info("sftp.stopped")

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            self._begin(sock, address)

    def _begin(self, sock: socket.socket, address: tuple[str, int]) -> None:
        host = str(address[0])
        refusal = self._refusal(host)
        if refusal:
            self.log.warning("sftp.refused", remote=host, reason=refusal)
            sock.close()
            return
        connection_id = uuid.uuid4().hex[:12]
        recorder = Recorder(
            self.audit, self.ledger, connection_id, f"{host}:{address[1]}"
        )
        transport = self._transport(sock)
        thread = threading.Thread(
            target=self._serve,
            args=(transport, recorder, host),
            name=f"sftp-{connection_id}",
            daemon=True,
        )
        with self._lock:
            self._connections[connection_id] = (thread, transport)
        thread.start()

    def _refusal(self, host: str) -> str:
        if self.budgets.is_banned(host):
            return "address banned"
        with self._lock:
            # Each connection costs threads; a flood of them must not exhaust
            # the process before the handshake timeout clears them.
            if len(self._connections) >= MAX_CONNECTIONS:
                return "too many connections"
        return ""

    def _transport(self, sock: socket.socket) -> paramiko.Transport:
        # Small requests are latency-bound: send each reply at once (Nagle off).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Paramiko takes any socket-like object; its type stubs say socket only.
        reader = cast(socket.socket, ReadAheadSocket(sock))
        transport = GatewayTransport(
            reader,
            default_window_size=WINDOW_SIZE,
            default_max_packet_size=MAX_PACKET_SIZE,
            disabled_algorithms=DISABLED_ALGORITHMS,
            strict_kex=True,
            rekey_bytes=self.config.sftp.rekey_limit_bytes,
        )
        timeout = float(self.config.sftp.handshake_timeout_seconds)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", SftpSession)
        return transport

    def _serve(
        self, transport: paramiko.Transport, recorder: Recorder, host: str
    ) -> None:
        gate = Gatekeeper(
            self.accounts,
            self.budgets,
            recorder,
            limits=self.limits,
            transport=transport,
            host=host,
            slots=self.slots,
        )
        try:
            self._converse(transport, gate, recorder)
        except Exception as exc:  # the catch-all: one client never hurts another
            recorder.failed(type(exc).__name__)
        finally:
            transport.close()
            gate.release()
            self._after(gate, recorder)
            with self._lock:
                self._connections.pop(recorder.connection_id, None)

    def _converse(
        self, transport: paramiko.Transport, gate: Gatekeeper, recorder: Recorder
    ) -> None:
        try:
            transport.start_server(server=gate)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.log.warning(
                "sftp.handshake_failed",
                connection_id=recorder.connection_id,
                remote=recorder.remote,
                reason=str(exc)[:200],
            )
            return
        if not self._await(transport, gate.started, recorder):
            return
        recorder.session_opened()
        while transport.is_active() and not gate.ended.wait(_POLL_SECONDS):
            pass
        gate.end_reason = gate.end_reason or "connection lost"

    def _await(
        self,
        transport: paramiko.Transport,
        started: threading.Event,
        recorder: Recorder,
    ) -> bool:
        # Login, channel and subsystem request together get the handshake time.
        deadline = float(self.config.sftp.handshake_timeout_seconds)
        waited = 0.0
        while transport.is_active() and not self._stopping.is_set():
            if started.wait(_POLL_SECONDS):
                return True
            waited += _POLL_SECONDS
            if waited >= deadline:
                self.log.warning(
                    "sftp.handshake_timeout",
                    connection_id=recorder.connection_id,
                    remote=recorder.remote,
                )
                return False
        return False

    @staticmethod
    def _after(gate: Gatekeeper, recorder: Recorder) -> None:
        if gate.started.is_set():
            recorder.session_closed(gate.end_reason or "closed")


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    """The Ed25519 host key at *path*, created (0600) on first start."""
    if not path.exists():
        _create_host_key(path)
    try:
        return paramiko.Ed25519Key.from_private_key_file(str(path))
    except (OSError, paramiko.SSHException) as exc:
        raise SftpError(f"{path}: cannot read the SSH host key") from exc


def _create_host_key(path: Path) -> None:
    make_private_dir(path.parent)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise SftpError(f"{path}: cannot create the SSH host key") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
