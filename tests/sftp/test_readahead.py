"""The read-ahead socket under paramiko's transport, on a real socket pair."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from gateway.sftp.readahead import ReadAheadSocket


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected stream sockets."""
    left, right = socket.socketpair()
    try:
        yield left, right
    finally:
        left.close()
        right.close()


def test_small_reads_are_served_from_one_read_ahead(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Reads in pieces return the bytes in order, never more than asked for."""
    sender, receiver = pair
    data = bytes(range(256)) * 40
    sender.sendall(data)
    reader = ReadAheadSocket(receiver, read_ahead=4096)

    pieces = []
    while sum(map(len, pieces)) < len(data):
        piece = reader.recv(100)
        assert 0 < len(piece) <= 100
        pieces.append(piece)

    assert b"".join(pieces) == data


def test_a_large_read_goes_straight_to_the_socket(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A read larger than the read-ahead takes what the socket has."""
    sender, receiver = pair
    sender.sendall(b"x" * 1000)
    reader = ReadAheadSocket(receiver, read_ahead=16)

    assert reader.recv(5000) == b"x" * 1000


def test_timeouts_and_end_of_stream_are_the_sockets_own(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """An idle socket times out as before, and a closed peer reads as empty."""
    sender, receiver = pair
    reader = ReadAheadSocket(receiver)
    reader.settimeout(0.01)

    with pytest.raises(TimeoutError):
        reader.recv(16)
    sender.sendall(b"last")
    sender.close()
    assert reader.recv(16) == b"last"
    assert reader.recv(16) == b""
    assert reader._closed is False
    reader.close()
    assert reader._closed is True


def test_a_send_into_a_full_buffer_waits_as_the_socket_does(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Sending with no room left times out like the socket, and resumes after."""
    writer_socket, peer = pair
    writer = ReadAheadSocket(writer_socket)
    writer.settimeout(0.01)
    sent = 0
    with pytest.raises(TimeoutError):
        while True:
            sent += writer.send(b"x" * 65536)

    peer.settimeout(1)
    received = 0
    while received < sent:
        received += len(peer.recv(1 << 20))
    assert writer.send(b"more") == 4


def test_a_tcp_socket_acknowledges_at_once_after_each_read() -> None:
    """After request and reply have gone back and forth, Linux would delay its
    acknowledgements; the read-ahead keeps asking it to acknowledge at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname()[:2])
    server, _ = listener.accept()
    reader = ReadAheadSocket(server)
    states = []
    try:
        for _ in range(20):
            client.sendall(b"request")
            assert reader.recv(100) == b"request"
            states.append(server.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK))
            server.sendall(b"reply")
            assert client.recv(100) == b"reply"
    finally:
        for sock in (client, server, listener):
            sock.close()

    assert states == [1] * 20
