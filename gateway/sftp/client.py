"""A partner's SFTP connection to the gateway, with the host key pinned.

Used by ``loonbrug send`` and ``loonbrug fetch``. The gateway's host key is
never learnt on first use: the partner configuration names it, either as an
OpenSSH public key (a ``known_hosts`` line, with or without the host field) or
as its SHA-256 fingerprint as ``ssh-keygen -l`` prints it (``SHA256:...``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import paramiko

from gateway.errors import SftpError
from gateway.sftp.accounts import KEY_TYPES
from gateway.sftp.service import DISABLED_ALGORITHMS


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA-256 fingerprint in OpenSSH's notation."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def matches_pin(key: paramiko.PKey, pin: str) -> bool:
    """True if *key* is the host key named by *pin*."""
    pin = pin.strip()
    if pin.startswith("SHA256:"):
        return fingerprint(key) == pin.rstrip("=")
    fields = pin.split()
    while fields and fields[0] not in KEY_TYPES:
        fields.pop(0)
    return len(fields) >= 2 and fields[1] == key.get_base64()


def load_private_key(path: Path) -> paramiko.PKey:
    """The partner's SSH private key (Ed25519, ECDSA or RSA, unencrypted)."""
    try:
        return paramiko.PKey.from_path(path)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise SftpError(f"{path}: cannot read the SSH private key") from exc


@contextlib.contextmanager
def connect(
    host: str,
    port: int,
    account: str,
    key: paramiko.PKey,
    pin: str,
    *,
    timeout: float = 30.0,
) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session as *account*, after checking the host key against *pin*."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise SftpError(f"cannot connect to {host}:{port}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, disabled_algorithms=DISABLED_ALGORITHMS)
    client: paramiko.SFTPClient | None = None
    try:
        client = _open(transport, account, key, pin, timeout)
        yield client
    except (OSError, paramiko.SSHException, EOFError) as exc:
        # OSError covers the SFTP status errors paramiko raises (permission
        # denied, no such file) as well as timeouts and lost connections.
        raise SftpError(f"SFTP session with {host}:{port} failed: {exc}") from exc
    finally:
        if client is not None:
            # Says goodbye on the channel, so the server logs a clean close.
            with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
                client.close()
        # Closing alone leaves the FIN unsent until paramiko's reader thread
        # wakes from its poll; the server would hold the session slot that long.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        transport.close()


def _open(
    transport: paramiko.Transport,
    account: str,
    key: paramiko.PKey,
    pin: str,
    timeout: float,
) -> paramiko.SFTPClient:
    transport.start_client(timeout=timeout)
    server_key = transport.get_remote_server_key()
    if not matches_pin(server_key, pin):
        raise SftpError(
            f"the gateway's host key {fingerprint(server_key)} is not the pinned one"
        )
    transport.auth_publickey(account, key)
    client = paramiko.SFTPClient.from_transport(transport)
    if client is None:
        raise SftpError("the gateway refused the SFTP session")
    channel = client.get_channel()
    if channel is not None:
        channel.settimeout(timeout)
    return client
