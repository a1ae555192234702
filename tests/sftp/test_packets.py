"""The packet reader and writer used once keys are in place.

Real sockets and real ciphers throughout: each test sets both ends up with the
same keys, the way the transport does after a key exchange, with paramiko's
own packetizer on one end wherever it can serve as the reference.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from paramiko.message import Message
from paramiko.packet import Packetizer
from paramiko.ssh_exception import SSHException

from gateway.sftp.packets import MAX_PACKET, GatewayPacketizer, missing_state
from gateway.sftp.readahead import ReadAheadSocket
from gateway.sftp.transport import GatewayTransport
from tests.support.sftp import RunningServer, sftp_server, wait_for

__all__ = ["sftp_server"]

BLOCK = 16


@dataclass(frozen=True)
class Keys:
    """One direction's keys: AES-128 in counter mode and an HMAC."""

    cipher_key: bytes
    iv: bytes
    mac_key: bytes
    digest: Callable[..., Any] = hashlib.sha256
    mac_size: int = 32

    def encryptor(self) -> Any:
        cipher = Cipher(algorithms.AES(self.cipher_key), modes.CTR(self.iv))
        return cipher.encryptor()

    def decryptor(self) -> Any:
        cipher = Cipher(algorithms.AES(self.cipher_key), modes.CTR(self.iv))
        return cipher.decryptor()


def new_keys(digest: Callable[..., Any] = hashlib.sha256, mac_size: int = 32) -> Keys:
    return Keys(os.urandom(16), os.urandom(16), os.urandom(mac_size), digest, mac_size)


def sending(packetizer: Packetizer, keys: Keys, *, etm: bool = True) -> None:
    packetizer.set_outbound_cipher(
        block_engine=keys.encryptor(),
        block_size=BLOCK,
        mac_engine=keys.digest,  # type: ignore[arg-type]
        mac_size=keys.mac_size,
        mac_key=keys.mac_key,
        sdctr=True,
        etm=etm,
    )


def receiving(packetizer: Packetizer, keys: Keys, *, etm: bool = True) -> None:
    packetizer.set_inbound_cipher(
        block_engine=keys.decryptor(),
        block_size=BLOCK,
        mac_engine=keys.digest,  # type: ignore[arg-type]
        mac_size=keys.mac_size,
        mac_key=keys.mac_key,
        etm=etm,
    )


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair; reads time out as the transport's do."""
    left, right = socket.socketpair()
    left.settimeout(0.1)
    right.settimeout(0.1)
    with left, right:
        yield left, right


def message(kind: int, body: bytes) -> Message:
    m = Message()
    m.add_byte(bytes([kind]))
    m.add_string(body)
    return m


def seal(keys: Keys, sequence: int, padding: int, payload: bytes) -> bytes:
    """A packet sealed by hand, so that its padding can be anything."""
    plain = bytes([padding]) + payload + bytes(padding)
    body = keys.encryptor().update(plain)
    length = struct.pack(">I", len(body))
    tag = hmac.new(
        keys.mac_key, struct.pack(">I", sequence) + length + body, keys.digest
    )
    return length + body + tag.digest()[: keys.mac_size]


def sealed_by_paramiko(keys: Keys, payloads: list[Message]) -> bytes:
    """The bytes paramiko's own packetizer puts on the wire for *payloads*."""
    left, right = socket.socketpair()
    with left, right:
        writer = Packetizer(left)  # type: ignore[arg-type]
        sending(writer, keys)
        for payload in payloads:
            writer.send_message(payload)
        left.shutdown(socket.SHUT_WR)
        wire = b""
        while chunk := right.recv(65536):
            wire += chunk
    return wire


@pytest.mark.parametrize(
    ("digest", "mac_size"), [(hashlib.sha256, 32), (hashlib.sha512, 64)]
)
@pytest.mark.parametrize("size", [0, 1, 11, 100, 4200, 70_000])
def test_packets_cross_with_paramikos_own_in_both_directions(
    sockets: tuple[socket.socket, socket.socket],
    digest: Callable[..., Any],
    mac_size: int,
    size: int,
) -> None:
    """What paramiko's packetizer writes, ours reads, and the other way round,
    with sequence numbers counted alike on both ends."""
    left, right = sockets
    theirs, ours = Packetizer(left), GatewayPacketizer(ReadAheadSocket(right))  # type: ignore[arg-type]
    there, back = new_keys(digest, mac_size), new_keys(digest, mac_size)
    sending(theirs, there)
    receiving(ours, there)
    sending(ours, back)
    receiving(theirs, back)

    for sequence in range(3):
        body = os.urandom(size)
        theirs.send_message(message(94, body))
        kind, got = ours.read_message()
        assert (kind, got.get_string(), got.seqno) == (94, body, sequence)
        ours.send_message(message(95, body))
        kind, got = theirs.read_message()
        assert (kind, got.get_string(), got.seqno) == (95, body, sequence)


def test_without_encrypt_then_mac_paramikos_own_code_serves(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    """A MAC over the plaintext is not the fast path's: paramiko's path reads it."""
    left, right = sockets
    theirs, ours = Packetizer(left), GatewayPacketizer(right)  # type: ignore[arg-type]
    keys = new_keys()
    sending(theirs, keys, etm=False)
    receiving(ours, keys, etm=False)

    theirs.send_message(message(94, b"plain MAC"))

    kind, got = ours.read_message()
    assert (kind, got.get_string()) == (94, b"plain MAC")


# Where one bit is changed in a packet paramiko sealed, and what the reader says.
TAMPERING = [
    # the last byte of the ciphertext: the MAC no longer matches
    (lambda wire: len(wire) - 33, "Mismatched MAC"),
    # the first byte of the ciphertext (the padding length)
    (lambda wire: 4, "Mismatched MAC"),
    # the last byte of the MAC itself
    (lambda wire: len(wire) - 1, "Mismatched MAC"),
    # the top byte of the length: two gigabytes, refused before any is read
    (lambda wire: 0, "above the limit"),
    # the lowest bit of the length: no longer whole cipher blocks
    (lambda wire: 3, "not whole cipher blocks"),
]


@pytest.mark.parametrize(("where", "complaint"), TAMPERING)
def test_a_packet_with_one_bit_changed_is_refused(
    sockets: tuple[socket.socket, socket.socket],
    where: Callable[[bytes], int],
    complaint: str,
) -> None:
    """No changed packet is ever handed on, whichever part the change hit."""
    left, right = sockets
    keys = new_keys()
    wire = bytearray(sealed_by_paramiko(keys, [message(94, os.urandom(100))]))
    position = where(bytes(wire))
    wire[position] ^= 0x80 if position == 0 else 0x01
    ours = GatewayPacketizer(right)  # type: ignore[arg-type]
    receiving(ours, keys)

    left.sendall(wire)
    left.shutdown(socket.SHUT_WR)  # a reader that waited for more would get EOF

    with pytest.raises(SSHException, match=complaint):
        ours.read_message()


def test_a_length_above_the_limit_is_refused_before_its_body_is_sent(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    """Only the length arrives, and the connection stays open: the reader
    refuses at once rather than wait for a body that never comes."""
    left, right = sockets
    ours = GatewayPacketizer(right)  # type: ignore[arg-type]
    receiving(ours, new_keys())

    ours.start_handshake(5)  # a reader that waited would give up after 5 s
    left.sendall(struct.pack(">I", MAX_PACKET + BLOCK))

    with pytest.raises(SSHException, match="above the limit"):
        ours.read_message()


def test_keys_given_by_position_as_older_paramiko_releases_give_them(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    """Paramiko 3 passes the new keys by position: the fast path serves them
    all the same (only it refuses a length above the limit)."""
    left, right = sockets
    keys = new_keys()
    theirs, ours = Packetizer(left), GatewayPacketizer(right)  # type: ignore[arg-type]
    sending(theirs, keys)
    ours.set_inbound_cipher(
        keys.decryptor(), BLOCK, keys.digest, keys.mac_size, keys.mac_key, etm=True
    )

    theirs.send_message(message(94, b"first"))
    assert ours.read_message()[1].get_string() == b"first"
    left.sendall(struct.pack(">I", 0xFFFFFFF0))
    left.shutdown(socket.SHUT_WR)

    with pytest.raises(SSHException, match="above the limit"):
        ours.read_message()


@pytest.mark.parametrize(
    ("padding", "payload"),
    [
        (3, b"\x5e" + bytes(11)),  # shorter than the 4 bytes RFC 4253 asks
        (15, b""),  # leaves no room for the message type
    ],
)
def test_padding_out_of_range_is_refused_even_under_a_valid_mac(
    sockets: tuple[socket.socket, socket.socket], padding: int, payload: bytes
) -> None:
    """A packet sealed with the right keys but impossible padding is refused."""
    left, right = sockets
    keys = new_keys()
    ours = GatewayPacketizer(right)  # type: ignore[arg-type]
    receiving(ours, keys)

    left.sendall(seal(keys, 0, padding, payload))

    with pytest.raises(SSHException, match="padding of"):
        ours.read_message()


def test_enough_bytes_under_one_set_of_keys_asks_for_new_ones(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    """Past the limit the reader asks for a key exchange, and the packets that
    still arrive under the old keys are read on, numbered on from the last."""
    left, right = sockets
    theirs, ours = Packetizer(left), GatewayPacketizer(right)  # type: ignore[arg-type]
    ours.REKEY_BYTES = 3000
    keys = new_keys()
    sending(theirs, keys)
    receiving(ours, keys)

    read = []
    for _ in range(5):
        theirs.send_message(message(94, os.urandom(1000)))
        read.append(ours.read_message()[1].seqno)
        if ours.need_rekey():
            break

    assert ours.need_rekey()
    assert len(read) == 3
    theirs.send_message(message(94, b"after the request"))
    kind, got = ours.read_message()
    assert (kind, got.get_string(), got.seqno) == (94, b"after the request", 3)


def test_enough_bytes_sent_asks_for_new_keys(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    """The writer counts what it sends toward the next key exchange too."""
    left, right = sockets
    ours, theirs = GatewayPacketizer(left), Packetizer(right)  # type: ignore[arg-type]
    ours.REKEY_PACKETS = 4
    keys = new_keys()
    sending(ours, keys)
    receiving(theirs, keys)

    for _ in range(3):
        ours.send_message(message(94, b"x"))
        theirs.read_message()
    assert not ours.need_rekey()
    ours.send_message(message(94, b"x"))
    assert ours.need_rekey()


def test_the_server_transport_uses_this_packetizer() -> None:
    """Every server connection goes through it, and paramiko has what it needs."""
    left, right = socket.socketpair()
    with left, right:
        transport = GatewayTransport(left, rekey_bytes=1 << 30)
        assert isinstance(transport.packetizer, GatewayPacketizer)
    assert missing_state() == []


@contextmanager
def flipping_proxy(port: int, offset: int) -> Iterator[tuple[int, threading.Event]]:
    """A loopback relay to *port* that inverts the client's byte at *offset*."""
    listener = socket.create_server(("127.0.0.1", 0))
    flipped = threading.Event()

    def pump(source: socket.socket, sink: socket.socket, flip: bool) -> None:
        seen = 0
        try:
            while data := source.recv(65536):
                if flip and seen <= offset < seen + len(data):
                    changed = bytearray(data)
                    changed[offset - seen] ^= 0xFF
                    data = bytes(changed)
                    flipped.set()
                seen += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def relay() -> None:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", port))
        up = threading.Thread(target=pump, args=(client, server, True))
        up.start()
        pump(server, client, False)
        up.join()
        client.close()
        server.close()

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], flipped
    finally:
        listener.close()
        thread.join(timeout=30)


def test_a_byte_changed_in_transit_ends_the_upload_and_leaves_nothing(
    sftp_server: RunningServer, tmp_path: Path
) -> None:
    """The stock client, through a relay that changes one byte two megabytes
    into its upload: the server drops the connection, nothing appears in the
    inbox, and the next client is served as usual."""
    report = tmp_path / "week.xml.gpg"
    report.write_bytes(os.urandom(3_000_000))
    inbox = sftp_server.spool / "inbox" / "uitzender-noord"
    known = tmp_path / "relay_known_hosts"
    key = sftp_server.service.host_key

    with flipping_proxy(sftp_server.service.port, offset=2_000_000) as (port, flipped):
        known.write_text(f"[127.0.0.1]:{port} {key.get_name()} {key.get_base64()}\n")
        batch = tmp_path / "batch"
        batch.write_text(f"put {report} /inbox/week.xml.gpg\n")
        options = sftp_server.ssh_options("uitzender-noord")
        options[options.index(f"UserKnownHostsFile={sftp_server.known_hosts}")] = (
            f"UserKnownHostsFile={known}"
        )
        broken = subprocess.run(
            [
                "sftp",
                "-b",
                str(batch),
                *options,
                "-P",
                str(port),
                "uitzender-noord@127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert flipped.is_set()
    assert broken.returncode != 0
    assert wait_for(lambda: bool(sftp_server.events("session.closed")))
    assert sftp_server.events("session.closed")[0]["reason"] == "connection lost"
    assert [p.name for p in inbox.iterdir() if not p.name.startswith(".")] == []
    clean = sftp_server.sftp("uitzender-noord", [f"put {report} /inbox/week.xml.gpg"])
    assert clean.returncode == 0, clean.stderr
    assert (inbox / "week.xml.gpg").read_bytes() == report.read_bytes()
