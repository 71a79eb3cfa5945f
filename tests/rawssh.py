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
    raised just for these calls."""
    authenticated = conn._auth_complete
    conn._auth_complete = True
    try:
        for pkttype, payload in packets:
            conn.send_packet(pkttype, payload)
    finally:
        conn._auth_complete = authenticated


async def wait_for_message(channel: ChannelZero, pkttype: int, timeout: float = 10) -> None:
    """Wait until the server has sent a packet of ``pkttype`` on channel 0."""
    deadline = asyncio.get_running_loop().time() + timeout
    while pkttype not in channel.received:
        assert asyncio.get_running_loop().time() < deadline, (pkttype, channel.received)
        await asyncio.sleep(0.01)
