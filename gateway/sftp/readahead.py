"""A socket that reads ahead, so paramiko's transport makes fewer system calls.

Paramiko's packet reader asks the socket for each SSH packet in three pieces
(the first cipher block, the rest, the MAC), and with a timeout set, Python
polls before every ``recv``: six system calls for one small SFTP request. This
wrapper takes whatever the kernel already holds, up to :data:`READ_AHEAD`
bytes, in one ``recv`` and hands it out from memory. It never holds more than
one such read, and everything else (timeouts, sending, closing) is the
socket's own.

On a TCP socket it also makes sure the client is never kept waiting for an
acknowledgement. OpenSSH's client leaves Nagle's algorithm on outside
interactive sessions, so it holds back its second small packet in a row (the
key exchange's second message, the first request after new keys) until the
first is acknowledged, and Linux delays acknowledgements once requests and
replies alternate: every login lost two pauses of about 40 ms. A reply carries
the acknowledgement anyway, so only when the wrapper is about to wait for more
after a read, with nothing sent since, does it ask Linux to acknowledge at once
(``TCP_QUICKACK``, which the kernel drops again by itself). Asking after every
read, as before, cost a system call and an extra segment per request.
"""

from __future__ import annotations

import socket

READ_AHEAD = 64 * 1024
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class ReadAheadSocket:
    """The socket-like object paramiko's ``Transport`` is given."""

    def __init__(self, sock: socket.socket, read_ahead: int = READ_AHEAD) -> None:
        self._sock = sock
        self._read_ahead = read_ahead
        tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        self._quick_ack = _QUICKACK if tcp else None
        self._pending = b""
        self._offset = 0
        # Bytes were read and nothing has been sent since, so the client's
        # acknowledgement may still be delayed.
        self._owes_ack = False

    def recv(self, size: int) -> bytes:
        """Up to *size* bytes: from what was read ahead, else from the socket."""
        if self._offset >= len(self._pending):
            if self._owes_ack and self._quick_ack is not None:
                self._owes_ack = False
                self._sock.setsockopt(socket.IPPROTO_TCP, self._quick_ack, 1)
            data = self._sock.recv(max(size, self._read_ahead))
            self._owes_ack = bool(data)
            if len(data) <= size:
                return data
            self._pending, self._offset = data, 0
        end = self._offset + size
        chunk = self._pending[self._offset : end]
        self._offset = end
        return chunk

    def send(self, data: bytes) -> int:
        """Send what the socket takes of *data*; it acknowledges what was read."""
        sent = self._sock.send(data)
        self._owes_ack = False
        return sent

    def settimeout(self, timeout: float | None) -> None:
        """Set the socket's timeout."""
        self._sock.settimeout(timeout)

    def getpeername(self) -> tuple[str, int]:
        """The remote address."""
        host, port = self._sock.getpeername()[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    @property
    def _closed(self) -> bool:
        # Paramiko's Transport.stop_thread reads this private socket attribute.
        return bool(getattr(self._sock, "_closed", False))
