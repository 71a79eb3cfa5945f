"""What the manhole changes in a client connection's transport, and why.

asyncssh has no option for any of these changes, so they reach into its connection (its
``data_received`` and ``_transport``); each keeps asyncssh's behaviour otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import asyncssh

__all__ = ["tune_connection"]


# Bytes from one client that asyncssh decrypts and handles in one turn of the loop.
_TURN_BYTES = 8 * 1024


def tune_connection(conn: asyncssh.SSHServerConnection) -> None:
    """Apply the changes below to a connection just made."""
    transport = getattr(conn, "_transport", None)
    if isinstance(transport, asyncio.Transport):
        _take_turns(conn, transport)
        conn._transport = _SilentWhenClosed(transport)  # type: ignore[assignment]
    _acknowledge_at_once(conn)


def _take_turns(conn: asyncssh.SSHServerConnection, transport: asyncio.Transport) -> None:
    """Hand asyncssh what the client sent at most _TURN_BYTES per turn of the loop.

    asyncssh decrypts and handles every packet of a read before it returns, and one read
    takes up to 256 kB: 2,500 small packets (a storm of window-change requests) held the
    loop, and every other session, for half a second. Past _TURN_BYTES the rest waits
    for the next turn, with the socket no longer read meanwhile (so nothing overtakes
    it, not even the end of the connection).
    """
    receive = conn.data_received
    waiting = bytearray()
    loop = asyncio.get_running_loop()

    def next_turn() -> None:
        if transport.is_closing():
            waiting.clear()
            return
        chunk = bytes(waiting[:_TURN_BYTES])
        del waiting[:_TURN_BYTES]
        receive(chunk)
        if waiting:
            loop.call_soon(next_turn)
        elif not transport.is_closing():
            transport.resume_reading()

    def data_received(data: bytes, datatype: int | None = None) -> None:
        if not waiting and len(data) <= _TURN_BYTES:
            receive(data)
            return
        if not waiting:
            transport.pause_reading()
            loop.call_soon(next_turn)
        waiting.extend(data)

    conn.data_received = data_received  # type: ignore[method-assign]


def _acknowledge_at_once(conn: asyncssh.SSHServerConnection) -> None:
    """Acknowledge each TCP segment from the client as it arrives (Linux TCP_QUICKACK).

    The handshake has several turns where the client sends two small packets in a row
    (NEWKEYS then SERVICE_REQUEST, KEXINIT then ECDH_INIT) without TCP_NODELAY: Nagle
    holds the second until the first is acknowledged, and the kernel delays that
    acknowledgement by 40 ms, since we have nothing to send back yet. Twice per login,
    that was 80 of the 100 ms it took. TCP_QUICKACK does not stick, so it is set again
    whenever data arrives.
    """
    sock = conn.get_extra_info("socket")
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    receive = conn.data_received

    def data_received(data: bytes, datatype: int | None = None) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        receive(data, datatype)

    conn.data_received = data_received  # type: ignore[method-assign]


class _SilentWhenClosed:
    """The connection's transport, dropping what is written once it is closing.

    When a client vanishes, the send that finds out fails and the transport closes, but
    asyncssh learns of it only at the loop's next turn: until then, the rest of what was
    being sent (a screen drawing is several packets) is written into the dead transport,
    and asyncio logs "socket.send() raised exception." on its ``asyncio`` logger: the
    host's stderr, in a host that configured no logging. The data could go nowhere anyway.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
