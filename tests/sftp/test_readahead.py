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


@pytest.fixture
def tcp() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A client and a server end of a loopback TCP connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname()[:2])
    server, _ = listener.accept()
    try:
        yield client, server
    finally:
        for sock in (client, server, listener):
            sock.close()


def _delays_acks(sock: socket.socket) -> bool:
    # Linux reports TCP_QUICKACK as 0 while it delays acknowledgements
    # (expecting a reply to carry them) and 1 while it sends them at once.
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 0


def test_replies_carry_the_acknowledgements_with_no_extra_ones(
    tcp: tuple[socket.socket, socket.socket],
) -> None:
    """While every request is answered, the reader forces no acknowledgement
    after reading one: Linux settles into delaying them, and each reply
    carries one."""
    client, server = tcp
    reader = ReadAheadSocket(server)
    delaying = []
    for _ in range(20):
        client.sendall(b"request")
        assert reader.recv(100) == b"request"
        delaying.append(_delays_acks(server))
        reader.send(b"reply")
        assert client.recv(100) == b"reply"

    assert delaying[-10:] == [True] * 10


def test_a_read_left_unanswered_is_acknowledged_before_the_next_wait(
    tcp: tuple[socket.socket, socket.socket],
) -> None:
    """A client whose next small packet waits for an acknowledgement (Nagle)
    gets it at once when the reader goes back to the socket without having
    sent anything, even after Linux had settled into delaying them."""
    client, server = tcp
    reader = ReadAheadSocket(server)
    for _ in range(10):
        client.sendall(b"request")
        assert reader.recv(100) == b"request"
        reader.send(b"reply")
        assert client.recv(100) == b"reply"
    assert _delays_acks(server)

    client.sendall(b"first half")
    assert reader.recv(100) == b"first half"
    assert _delays_acks(server)
    reader.settimeout(0.01)  # the client holds its second half back: none comes
    with pytest.raises(TimeoutError):
        reader.recv(100)

    assert not _delays_acks(server)
