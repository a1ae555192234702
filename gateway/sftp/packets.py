"""SSH packets once keys are in place: read and written with less work, checked harder.

Paramiko's ``Packetizer`` reads each packet in three pieces, keys a new HMAC for
every packet and compares MACs in a Python loop; on this server that is a good
part of what a small SFTP request costs. When the negotiated algorithms are
encrypt-then-MAC with a counter-mode cipher (what OpenSSH's client and this
server agree on), :class:`GatewayPacketizer` does the same work with two reads,
a copy of one keyed HMAC per packet and a comparison in C. It also refuses what
paramiko's reader lets through, each before the packet is used (RFC 4253,
section 6):

- a length above :data:`MAX_PACKET`, refused before a byte of the body is read,
  so a client cannot make the server wait for, or hold, gigabytes;
- a length that is not a whole number of cipher blocks;
- padding shorter than 4 bytes, or longer than the packet leaves room for.

Everything else stays paramiko's own code: the key exchange and every packet
before new keys, other algorithms (AES-GCM, MACs over the plaintext),
compression, packet dumps, and the packets read while a new key exchange is
pending. The fast path keeps paramiko's own state (sequence numbers, the counts
that start the next key exchange), so both paths can take turns within one set
of keys. Paramiko keeps that state in private attributes; :func:`missing_state`
names any that a paramiko release lacks, and the service checks it before it
listens.
"""

from __future__ import annotations

import hmac
import inspect
import struct
import threading
from collections.abc import Callable
from typing import Any

from paramiko.message import Message
from paramiko.packet import Packetizer
from paramiko.ssh_exception import SSHException

# OpenSSH's own bound on a packet (PACKET_MAX_SIZE in packet.c is 256 KiB); our
# largest SFTP request (gateway.sftp.protocol.MAX_PACKET) fits with room to spare.
MAX_PACKET = 256 * 1024 + 4 * 1024
MIN_PADDING = 4
_U32 = struct.Struct(">I")
_U32_PAIR = struct.Struct(">II")
_WRAP = 0xFFFFFFFF


class _Keys:
    """One direction's cipher, when the fast path can serve it."""

    def __init__(
        self, cipher: Any, block_size: int, mac: hmac.HMAC, mac_size: int
    ) -> None:
        self.cipher = cipher
        self.block_size = block_size
        self.mac = mac
        self.mac_size = mac_size

    def tag(self, sequence: int, length: int, body: bytes) -> bytes:
        """The MAC of one packet: over its sequence number, length and ciphertext."""
        mac = self.mac.copy()
        mac.update(_U32_PAIR.pack(sequence, length))
        mac.update(body)
        return mac.digest()[: self.mac_size]


def _named(
    method: Callable[..., None], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    # The arguments of a call to one of paramiko's methods, by name.
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _keys(named: dict[str, Any]) -> _Keys | None:
    cipher, mac_engine, mac_key = (
        named["block_engine"],
        named["mac_engine"],
        named["mac_key"],
    )
    if cipher is None or named.get("aead") or not named.get("etm"):
        return None
    if mac_engine is None or not mac_key:
        return None
    mac = hmac.new(mac_key, digestmod=mac_engine)
    return _Keys(cipher, named["block_size"], mac, named["mac_size"])


class GatewayPacketizer(Packetizer):
    """Paramiko's packetizer with a fast, stricter path for encrypt-then-MAC."""

    _keys_in: _Keys | None = None
    _keys_out: _Keys | None = None
    # Paramiko's own state that the fast path reads or updates, set by
    # Packetizer.__init__; declared for the type checker and for missing_state.
    _Packetizer__compress_engine_in: Any
    _Packetizer__compress_engine_out: Any
    _Packetizer__dump_packets: bool
    _Packetizer__need_rekey: bool
    _Packetizer__sequence_number_in: int
    _Packetizer__sequence_number_out: int
    _Packetizer__received_bytes: int
    _Packetizer__received_packets: int
    _Packetizer__received_bytes_overflow: int
    _Packetizer__received_packets_overflow: int
    _Packetizer__sent_bytes: int
    _Packetizer__sent_packets: int
    _Packetizer__write_lock: threading.RLock
    _initial_kex_done: bool

    # Paramiko releases differ in passing these by name or by position.

    def set_inbound_cipher(self, *args: Any, **kwargs: Any) -> None:
        """Paramiko's switch to new inbound keys; notes if the fast path serves."""
        super().set_inbound_cipher(*args, **kwargs)
        self._keys_in = _keys(_named(Packetizer.set_inbound_cipher, args, kwargs))

    def set_outbound_cipher(self, *args: Any, **kwargs: Any) -> None:
        """Paramiko's switch to new outbound keys; notes if the fast path serves."""
        super().set_outbound_cipher(*args, **kwargs)
        named = _named(Packetizer.set_outbound_cipher, args, kwargs)
        # Paramiko pads with zeros only under a counter-mode cipher; so do we.
        self._keys_out = _keys(named) if named.get("sdctr") else None

    def read_message(self) -> tuple[int, Message]:
        """The next packet's type and payload."""
        keys = self._keys_in
        if (
            keys is None
            or self._Packetizer__need_rekey
            or self._Packetizer__compress_engine_in is not None
            or self._Packetizer__dump_packets
        ):
            return super().read_message()
        (length,) = _U32.unpack(self.read_all(4, check_rekey=True))
        if length > MAX_PACKET:
            raise SSHException(
                f"packet length {length} above the limit of {MAX_PACKET}"
            )
        if length % keys.block_size:
            raise SSHException(f"packet length {length} is not whole cipher blocks")
        rest = self.read_all(length + keys.mac_size)
        body = rest[:length]
        sequence = self._Packetizer__sequence_number_in
        if not hmac.compare_digest(keys.tag(sequence, length, body), rest[length:]):
            raise SSHException("Mismatched MAC")
        packet = keys.cipher.update(body)
        padding = packet[0]
        if padding < MIN_PADDING or padding > length - 2:
            raise SSHException(f"padding of {padding} bytes in a packet of {length}")
        self._count_in(sequence, length + keys.mac_size + 4)
        message = Message(packet[2 : length - padding])
        message.seqno = sequence
        return packet[1], message

    def _count_in(self, sequence: int, size: int) -> None:
        # Paramiko's bookkeeping for a packet read: the next sequence number,
        # and a key exchange once enough has arrived under these keys.
        self._Packetizer__sequence_number_in = self._following(sequence)
        self._Packetizer__received_bytes += size
        self._Packetizer__received_packets += 1
        if (
            self._Packetizer__received_packets >= self.REKEY_PACKETS
            or self._Packetizer__received_bytes >= self.REKEY_BYTES
        ):
            self._ask_for_new_keys()

    def _following(self, sequence: int) -> int:
        # The sequence number after *sequence*; it wraps, but never before
        # the first key exchange is done.
        following = (sequence + 1) & _WRAP
        if following == 0 and not self._initial_kex_done:
            raise SSHException("Sequence number rolled over during initial kex!")
        return following

    def _ask_for_new_keys(self) -> None:
        self._Packetizer__received_bytes_overflow = 0
        self._Packetizer__received_packets_overflow = 0
        self._trigger_rekey()  # type: ignore[attr-defined]

    def send_message(self, data: Message) -> None:
        """Send one packet under the current keys."""
        keys = self._keys_out
        if (
            keys is None
            or self._Packetizer__compress_engine_out is not None
            or self._Packetizer__dump_packets
        ):
            super().send_message(data)
            return
        payload = data.asbytes()
        # Padding: at least 4 bytes, up to whole blocks; the length is not
        # encrypted under encrypt-then-MAC, so it is not counted.
        padding = (
            MIN_PADDING - 1 + keys.block_size - (len(payload) + 4) % keys.block_size
        )
        length = len(payload) + padding + 1
        with self._Packetizer__write_lock:
            body = keys.cipher.update(bytes((padding,)) + payload + bytes(padding))
            sequence = self._Packetizer__sequence_number_out
            self._Packetizer__sequence_number_out = self._following(sequence)
            out = _U32.pack(length) + body + keys.tag(sequence, length, body)
            self.write_all(out)
            self._Packetizer__sent_bytes += len(out)
            self._Packetizer__sent_packets += 1
            if not self._Packetizer__need_rekey and (
                self._Packetizer__sent_packets >= self.REKEY_PACKETS
                or self._Packetizer__sent_bytes >= self.REKEY_BYTES
            ):
                self._ask_for_new_keys()


def missing_state() -> list[str]:
    """Paramiko's private packetizer attributes this module needs and cannot find."""
    probe = Packetizer(None)  # type: ignore[arg-type]
    paramikos = [n for n in GatewayPacketizer.__annotations__ if "_keys" not in n]
    names = [name for name in paramikos if not hasattr(probe, name)]
    if not hasattr(probe, "_trigger_rekey"):
        names.append("_trigger_rekey")
    return names
