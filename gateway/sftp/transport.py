"""An SSH transport that hands channel data straight to the SFTP session.

Paramiko's transport thread reads every SSH packet; for channel data it would
append the bytes to the channel's buffer and wake the session's own thread,
which reads them, answers and sends. For small requests that handoff (a lock,
a condition, a thread switch each way) costs as much as the request itself.
:class:`GatewayTransport` lets a session attach a :class:`Receiver` to its
channel: the transport thread then calls it with each packet's data, and the
session answers in that same thread whenever it can send without waiting.

Doing so needs four internals of paramiko that its type stubs do not declare:
the transport's table of channel message handlers, ``Channel._feed``,
``Channel._check_add_window`` and ``Transport._send_user_message``; the
transport's packets go through :class:`gateway.sftp.packets.GatewayPacketizer`,
which needs some of the packetizer's private state.
:func:`check_paramiko` confirms all of them are there, and the service calls it
before it listens, so that a paramiko release without them stops the service
at start, with a clear error, instead of failing a session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import paramiko
from paramiko.common import (
    MSG_CHANNEL_CLOSE,
    MSG_CHANNEL_DATA,
    MSG_CHANNEL_EOF,
    cMSG_CHANNEL_WINDOW_ADJUST,
)
from paramiko.message import Message

from gateway.errors import SftpError
from gateway.sftp.packets import GatewayPacketizer, missing_state

_Handler = Callable[[paramiko.Channel, Message], None]


class Receiver(Protocol):
    """What a session attached to a channel is told, in the transport thread."""

    def received(self, data: bytes) -> None:
        """The client sent *data* on the channel."""

    def client_done(self) -> None:
        """The client sent EOF or closed the channel: it sends nothing more."""

    def connection_lost(self) -> None:
        """The transport has stopped: nothing more can be sent or received."""


def _handlers(cls: type[paramiko.Transport]) -> dict[int, _Handler]:
    table: dict[int, _Handler] = getattr(cls, "_channel_handler_table", {})
    return table


class GatewayTransport(paramiko.Transport):
    """A server transport whose channels may have a :class:`Receiver` attached."""

    def __init__(self, sock: Any, *, rekey_bytes: int, **options: Any) -> None:
        super().__init__(sock, packetizer_class=GatewayPacketizer, **options)
        self.receivers: dict[int, Receiver] = {}
        # New keys after this many bytes in either direction (OpenSSH's
        # RekeyLimit); paramiko starts the exchange in the transport thread.
        self.packetizer.REKEY_BYTES = rekey_bytes

    def attach(self, channel: paramiko.Channel, receiver: Receiver) -> None:
        """From now on, data arriving on *channel* goes to *receiver*.

        Must be called in the transport thread (a subsystem handler's
        constructor is), so that no packet is dispatched while it happens.
        """
        self.receivers[channel.get_id()] = receiver

    def run(self) -> None:
        """The transport thread; attached receivers hear when it ends."""
        try:
            super().run()
        finally:
            for receiver in list(self.receivers.values()):
                receiver.connection_lost()


def _receiver(channel: paramiko.Channel) -> Receiver | None:
    transport = channel.get_transport()
    if isinstance(transport, GatewayTransport):
        return transport.receivers.get(channel.get_id())
    return None


_PARAMIKO = _handlers(paramiko.Transport)


def _data(channel: paramiko.Channel, message: Message) -> None:
    receiver = _receiver(channel)
    if receiver is None:
        _PARAMIKO[MSG_CHANNEL_DATA](channel, message)
    else:
        receiver.received(message.get_binary())


def _ended(kind: int) -> _Handler:
    def handle(channel: paramiko.Channel, message: Message) -> None:
        receiver = _receiver(channel)
        _PARAMIKO[kind](channel, message)
        if receiver is not None:
            receiver.client_done()

    return handle


GatewayTransport._channel_handler_table = {  # type: ignore[attr-defined]
    **_PARAMIKO,
    MSG_CHANNEL_DATA: _data,
    MSG_CHANNEL_EOF: _ended(MSG_CHANNEL_EOF),
    MSG_CHANNEL_CLOSE: _ended(MSG_CHANNEL_CLOSE),
}


def can_send_now(channel: paramiko.Channel, size: int) -> bool:
    """True if *size* bytes can be sent on *channel* without waiting.

    Sending waits while a key exchange is under way and while the client's
    window is too small; in the transport thread either wait would never end,
    since that thread is the one that would finish the exchange or read the
    client's window adjustment.
    """
    transport = channel.get_transport()
    return (
        transport is not None
        and transport.clear_to_send.is_set()
        and channel.out_window_size >= size
    )


def consumed(channel: paramiko.Channel, size: int) -> Message | None:
    """Count *size* bytes as read from *channel*; the window adjustment to send."""
    grant: int = channel._check_add_window(size)  # type: ignore[attr-defined]
    if grant <= 0:
        return None
    message = Message()
    message.add_byte(cMSG_CHANNEL_WINDOW_ADJUST)
    message.add_int(channel.remote_chanid)
    message.add_int(grant)
    return message


def send_message(channel: paramiko.Channel, message: Message) -> None:
    """Send a channel control message, such as a window adjustment."""
    transport = channel.get_transport()
    if transport is None:
        raise EOFError("the transport is gone")
    transport._send_user_message(message)  # type: ignore[attr-defined]


def check_paramiko() -> None:
    """Raise :class:`SftpError` if paramiko lacks an internal this module uses."""
    missing = [
        name
        for owner, name in (
            (paramiko.Transport, "_channel_handler_table"),
            (paramiko.Transport, "_send_user_message"),
            (paramiko.Channel, "_feed"),
            (paramiko.Channel, "_check_add_window"),
        )
        if not hasattr(owner, name)
    ]
    missing.extend(f"Packetizer.{name}" for name in missing_state())
    table = getattr(paramiko.Transport, "_channel_handler_table", {})
    if any(kind not in table for kind in (MSG_CHANNEL_DATA, MSG_CHANNEL_EOF)):
        missing.append("channel data and EOF handlers")
    if missing:
        raise SftpError(
            f"paramiko {paramiko.__version__} lacks {', '.join(missing)}; "
            "install a release this gateway supports (see pyproject.toml)"
        )
