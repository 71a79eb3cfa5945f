"""SSH connection-layer packets made by hand, for tests that send what asyncssh's client
would not (a channel request before authentication, or after the server ended the session).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
from asyncssh.constants import (
    MSG_CHANNEL_OPEN,
    MSG_CHANNEL_OPEN_CONFIRMATION,
    MSG_CHANNEL_OPEN_FAILURE,
    MSG_CHANNEL_REQUEST,
)
from asyncssh.packet import Boolean, String, UInt32

Packet = tuple[int, bytes]


def channel_open() -> Packet:
    """SSH_MSG_CHANNEL_OPEN "session": our channel 0, a 2 MB window, 32 kB packets."""
    return MSG_CHANNEL_OPEN, String(b"session") + UInt32(0) + UInt32(2**21) + UInt32(32768)


def exec_request(code: str) -> Packet:
    """SSH_MSG_CHANNEL_REQUEST "exec" on the server's channel 0 (the first it would open),
    asking no reply (a reply would be a response the client is not waiting for)."""
    return MSG_CHANNEL_REQUEST, UInt32(0) + String(b"exec") + Boolean(False) + String(code)


def marker_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


class ChannelZero:
    """Takes whatever the server sends on the client's channel 0 (no asyncssh channel
    object exists for it: the packets were made by hand), and records the types."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def log_received_packet(self, *args: object) -> None:
        pass

    def process_packet(self, pkttype: int, seq: int, packet: object) -> bool:
        self.received.append(pkttype)
        return True

    def process_open_confirmation(self, *args: object) -> None:
        self.received.append(MSG_CHANNEL_OPEN_CONFIRMATION)

    def process_open_failure(self, *args: object) -> None:
        self.received.append(MSG_CHANNEL_OPEN_FAILURE)

    def process_connection_close(self, exc: Exception | None) -> None:
        pass

    def close(self) -> None:
        pass


def send_raw(conn: asyncssh.SSHClientConnection, packets: list[Packet]) -> None:
    """Encrypt and send ``packets`` now, even before authentication has completed: the
    client queues connection-layer packets until then (``_auth_complete``), so the flag is
    raised just for these calls.

    They go out in one write, so they arrive together. A server that cuts the connection
    on the first one has read the others by then; one arriving after the server closed
    its socket would draw a reset, and the client could lose the server's reason (its
    next read or write failing with EPIPE instead)."""
    authenticated = conn._auth_complete
    conn._auth_complete = True
    encrypted: list[bytes] = []
    send = conn._send
    conn._send = encrypted.append  # type: ignore[method-assign]
    try:
        for pkttype, payload in packets:
            conn.send_packet(pkttype, payload)
    finally:
        conn._send = send  # type: ignore[method-assign]
        conn._auth_complete = authenticated
    send(b"".join(encrypted))


async def wait_for_message(channel: ChannelZero, pkttype: int, timeout: float = 10) -> None:
    """Wait until the server has sent a packet of ``pkttype`` on channel 0."""
    deadline = asyncio.get_running_loop().time() + timeout
    while pkttype not in channel.received:
        assert asyncio.get_running_loop().time() < deadline, (pkttype, channel.received)
        await asyncio.sleep(0.01)
