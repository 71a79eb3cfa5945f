"""Connection-layer messages (channel open, exec) sent before authentication never run code.

asyncssh's client holds such messages back until it is logged in, so these tests push
them out past that queue, on purpose, from a client callback that runs while
authentication is in progress. A control sends the same bytes after a login, to show
that they are well formed and would run the code if the server took them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from pathlib import Path

import asyncssh
import pytest
from asyncssh.constants import MSG_CHANNEL_CLOSE, MSG_CHANNEL_OPEN_CONFIRMATION
from conftest import Host, Keys, asyncssh_client, exec_code, read_events, wait_for
from rawssh import (
    ChannelZero,
    Packet,
    channel_open,
    exec_request,
    marker_code,
    send_raw,
    wait_for_message,
)


class Intruder(asyncssh.SSHClient):
    """Offers a key the server refuses; when asyncssh asks for the next key (the login in
    progress, not complete), sends ``packets``, waits for the server to close the
    connection (10 s at most), then offers the good key."""

    def __init__(self, packets: list[Packet], good_key: Path) -> None:
        self._packets = packets
        self._good_key = good_key
        self.conn: asyncssh.SSHClientConnection | None = None
        self.channel = ChannelZero()
        self.sent_while: tuple[bool, bool] | None = None  # (kex done, auth done) at send
        self.lost = asyncio.Event()

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()

    async def public_key_auth_requested(self) -> str | None:
        conn = self.conn
        assert conn is not None
        if self.sent_while is not None:
            return None
        self.sent_while = (conn._kex_complete, conn._auth_complete)
        conn._channels[0] = self.channel  # type: ignore[assignment]
        send_raw(conn, self._packets)
        # Whatever the client sent next could meet a closed socket (an OSError here,
        # and the server's reason unread): wait for the server's verdict first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.lost.wait(), 10)
        return str(self._good_key)


@pytest.mark.parametrize("what", ["channel open then exec", "exec alone"])
def test_channel_messages_before_authentication_run_nothing(
    audited_host: tuple[Host, Path], keys: Keys, tmp_path: Path, what: str
) -> None:
    host, audit_file = audited_host
    marker = tmp_path / "marker"
    packets = [channel_open()] if what == "channel open then exec" else []
    packets.append(exec_request(marker_code(marker)))
    intruder = Intruder(packets, keys.client_key)
    wrong_key = asyncssh.generate_private_key("ssh-ed25519")

    async def intrude() -> None:
        async with asyncssh_client(
            host.port, client_factory=lambda: intruder, client_keys=[wrong_key], password=None
        ) as connection:
            await connection.run("'logged in after all'")

    with pytest.raises(asyncssh.ProtocolError) as cut:
        asyncio.run(intrude())
    # Sent encrypted (key exchange done) while the login was in progress (not done) ...
    assert intruder.sent_while == (True, False)
    # ... and read by the server as such: it closed the connection on the first one.
    assert cut.value.reason == "Invalid request before authentication was complete"
    assert intruder.channel.received == []  # no channel was opened

    # The host still serves a good login; once that code has run, the other would have too.
    assert exec_code(host.port, keys.client_key, "'still serving'").stdout == "'still serving'\n"
    assert not marker.exists()
    wait_for(
        lambda: [e["event"] for e in read_events(audit_file)].count("session_end") == 1,
        10,
        "the good session to be audited",
    )
    logins = [
        (e["result"], e["fingerprint"]) for e in read_events(audit_file) if e["event"] == "auth"
    ]
    wrong = wrong_key.get_fingerprint("sha256")
    good = asyncssh.read_public_key(keys.client_key.with_suffix(".pub")).get_fingerprint()
    assert logins == [("refused", wrong), ("accepted", good)]  # the intruder never got in
    assert [e["event"] for e in read_events(audit_file)].count("session_start") == 1


def test_the_same_messages_after_authentication_do_run(
    host: Host, keys: Keys, tmp_path: Path
) -> None:
    """The control: the hand-made packets, sent once logged in, open a session and run the
    code. (So the test above would see it if the server took them before the login.)"""
    marker = tmp_path / "marker"
    channel = ChannelZero()

    async def send_after_login() -> None:
        async with asyncssh_client(host.port, client_keys=[str(keys.client_key)]) as connection:
            assert connection._auth_complete
            connection._channels[0] = channel  # type: ignore[assignment]
            send_raw(connection, [channel_open()])
            await wait_for_message(
                channel, MSG_CHANNEL_OPEN_CONFIRMATION
            )  # (an OPEN_FAILURE fails)
            send_raw(connection, [exec_request(marker_code(marker))])
            await wait_for_message(channel, MSG_CHANNEL_CLOSE)  # the session ran and ended

    asyncio.run(send_after_login())
    assert marker.exists()


def _cleartext_packet(pkttype: int, payload: bytes) -> bytes:
    """A binary packet as sent before any key exchange: no encryption, no MAC."""
    body = bytes([pkttype]) + payload
    padding = 8 - (5 + len(body)) % 8
    if padding < 4:
        padding += 8
    return struct.pack(">IB", 1 + len(body) + padding, padding) + body + os.urandom(padding)


def test_channel_messages_before_key_exchange_run_nothing(
    host: Host, keys: Keys, tmp_path: Path
) -> None:
    """The raw-socket variant: the same messages in clear text, right after the version
    line, with no key exchange at all."""
    marker = tmp_path / "marker"
    packets = [channel_open(), exec_request(marker_code(marker))]
    with socket.create_connection(("127.0.0.1", host.port), timeout=10) as raw:
        assert raw.recv(256).startswith(b"SSH-2.0-manhole_ssh")
        raw.sendall(
            b"SSH-2.0-OpenSSH_9.6\r\n"
            + b"".join(_cleartext_packet(pkttype, payload) for pkttype, payload in packets)
        )
        received = b""
        try:
            while chunk := raw.recv(65536):  # the server closes it (a timeout fails)
                received += chunk
        except ConnectionResetError:
            pass
    assert b"Invalid request before key exchange was complete" in received  # its DISCONNECT
    assert exec_code(host.port, keys.client_key, "'still serving'").stdout == "'still serving'\n"
    assert not marker.exists()
