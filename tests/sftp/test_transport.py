"""Requests answered in the transport thread, and what must not stall there.

The transport thread answers a request at once only when the reply can go out
without waiting; these tests make it wait: a client whose window is far
smaller than the replies, and key exchanges the server starts in the middle of
transfers.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest

from gateway.config import MIN_REKEY_LIMIT
from gateway.sftp import protocol as wire
from gateway.sftp.client import load_private_key
from gateway.sftp.transport import check_paramiko
from tests.support.sftp import RunningServer, sftp_server, start_server, wait_for

__all__ = ["sftp_server"]

MEGABYTE = 1024 * 1024


@contextmanager
def logged_in(server: RunningServer, account: str) -> Iterator[paramiko.Transport]:
    """A paramiko client transport logged in as *account*."""
    sock = socket.create_connection(("127.0.0.1", server.service.port))
    transport = paramiko.Transport(sock)
    try:
        transport.connect(
            hostkey=server.service.host_key,
            username=account,
            pkey=load_private_key(server.key(account)),
        )
        yield transport
    finally:
        transport.close()


@contextmanager
def small_window_session(
    server: RunningServer, account: str, window: int
) -> Iterator[paramiko.SFTPClient]:
    """A paramiko SFTP session whose channel window is *window* bytes."""
    with logged_in(server, account) as transport:
        client = paramiko.SFTPClient.from_transport(
            transport, window_size=window, max_packet_size=min(window, 32768)
        )
        assert client is not None
        with client:
            yield client


def test_the_paramiko_internals_used_are_there() -> None:
    """The installed paramiko has every internal the transport relies on."""
    check_paramiko()


def test_download_through_a_window_smaller_than_one_reply(
    sftp_server: RunningServer,
) -> None:
    """Replies that do not fit the client's window wait in the session's queue,
    in order, and the file arrives whole."""
    content = os.urandom(3 * MEGABYTE)
    name = "GM0599-20261204-000001.xml.gpg"
    (sftp_server.spool / "outbox" / "rotterdam" / name).write_bytes(content)

    with small_window_session(sftp_server, "rotterdam", window=16384) as sftp:
        with sftp.open(f"/outbox/{name}", "rb") as handle:
            handle.prefetch()
            fetched = handle.read()
        listed = sftp.listdir("/outbox")

    assert hashlib.sha256(fetched).digest() == hashlib.sha256(content).digest()
    assert listed == [name]
    assert wait_for(lambda: len(sftp_server.events("delivery.downloaded")) == 1)


@pytest.fixture
def rekeying_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server that starts a new key exchange after every 64 KiB."""
    server = start_server(tmp_path / "server", rekey_limit_bytes=MIN_REKEY_LIMIT)
    try:
        yield server
    finally:
        server.stop()


def test_key_exchanges_started_by_the_server_mid_transfer(
    rekeying_server: RunningServer, tmp_path: Path
) -> None:
    """Key exchanges the server starts while requests keep arriving neither
    stall a session nor lose or reorder a byte, in either direction."""
    uploads = {f"report-{n}.gpg": os.urandom(200_000 + n) for n in range(8)}
    for name, content in uploads.items():
        (tmp_path / name).write_bytes(content)
    download = os.urandom(2 * MEGABYTE)
    outbox = rekeying_server.spool / "outbox" / "rotterdam"
    (outbox / "big.xml.gpg").write_bytes(download)

    sent = rekeying_server.sftp(
        "uitzender-noord",
        [f"put {tmp_path / name} /inbox/{name}" for name in uploads],
        "-v",
    )
    fetched = rekeying_server.sftp(
        "rotterdam", [f"get /outbox/big.xml.gpg {tmp_path / 'big'}"], "-v"
    )

    assert sent.returncode == 0, sent.stderr[-2000:]
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    inbox = rekeying_server.spool / "inbox" / "uitzender-noord"
    for name, content in uploads.items():
        assert (inbox / name).read_bytes() == content
    assert (tmp_path / "big").read_bytes() == download
    # The first exchange opens the connection; every further one is a rekey.
    assert sent.stderr.count("SSH2_MSG_KEXINIT received") > 3
    assert fetched.stderr.count("SSH2_MSG_KEXINIT received") > 3


def _request(kind: int, request_id: int, *fields: bytes) -> bytes:
    body = bytes([kind]) + wire.u32(request_id) + b"".join(fields)
    return wire.u32(len(body)) + body


def _reply(channel: paramiko.Channel) -> bytes:
    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = channel.recv(size - len(data))
            assert chunk, "the server closed the channel"
            data += chunk
        return data

    return exactly(int.from_bytes(exactly(4), "big"))


@contextmanager
def raw_channel(server: RunningServer, account: str) -> Iterator[paramiko.Channel]:
    """An ``sftp`` subsystem channel past INIT, for requests written by hand."""
    with logged_in(server, account) as transport:
        channel = transport.open_session()
        channel.settimeout(20)
        channel.invoke_subsystem("sftp")
        channel.sendall(wire.u32(5) + bytes([wire.Kind.INIT]) + wire.u32(3))
        assert _reply(channel)[0] == wire.Kind.VERSION
        yield channel


def test_a_burst_of_reads_is_answered_a_portion_at_a_time(
    sftp_server: RunningServer,
) -> None:
    """Hundreds of large reads sent at once, with the client not yet reading,
    do not make the server build every reply in memory before sending any."""
    name = "GM0599-20261204-000002.xml.gpg"
    content = os.urandom(wire.MAX_DATA)
    (sftp_server.spool / "outbox" / "rotterdam" / name).write_bytes(content)
    reads = 400  # 100 MB of replies if all were built at once

    with raw_channel(sftp_server, "rotterdam") as channel:
        path = wire.string(f"/outbox/{name}")
        channel.sendall(_request(wire.Kind.OPEN, 1, path, wire.u32(1), wire.u32(0)))
        opened = _reply(channel)
        assert opened[0] == wire.Kind.HANDLE
        handle = opened[5:]
        read = _request(wire.Kind.READ, 2, handle, wire.u64(0), wire.u32(wire.MAX_DATA))
        expected = bytes([wire.Kind.DATA]) + wire.u32(2) + wire.string(content)

        tracemalloc.start()
        try:
            channel.sendall(read * reads)
            whole = sum(_reply(channel) == expected for _ in range(reads))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert whole == reads
    assert peak < 30 * MEGABYTE


def test_a_request_length_no_request_has_ends_the_session(
    sftp_server: RunningServer,
) -> None:
    """A length field beyond the largest request is refused at once, before
    the server waits for the 4 GiB it announces."""
    with raw_channel(sftp_server, "rotterdam") as channel:
        channel.sendall(b"\xff\xff\xff\xff" + bytes([wire.Kind.READ]))

        assert channel.recv(1) == b""

    assert wait_for(
        lambda: (
            [e["reason"] for e in sftp_server.events("session.closed")]
            == ["protocol violation: request length out of range"]
        )
    )
