"""Limits on logged-in clients: connections overall and per key, unused connections,
sessions still closing, and a listener that pauses when descriptors run out."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
from asyncssh.constants import MSG_CHANNEL_CLOSE, MSG_CHANNEL_OPEN_CONFIRMATION
from conftest import (
    Keys,
    asyncssh_client,
    exec_code,
    read_events,
    run_ssh,
    start_host,
    stop_host,
    wait_for,
    write_key_pair,
)
from rawssh import ChannelZero, channel_open, exec_request, send_raw, wait_for_message


def test_logged_in_connections_are_capped_overall_and_per_key(keys: Keys, tmp_path: Path) -> None:
    second_key = keys.folder / "id_second"
    write_key_pair(second_key, "bob@test")
    with keys.authorized_keys.open("a") as authorized:
        authorized.write(second_key.with_suffix(".pub").read_text())
    audit_file = tmp_path / "audit.jsonl"
    host = start_host(
        keys,
        *("--set", "max_connections=3", "--set", "max_connections_per_key=2"),
        *("--set", f"audit_file={audit_file}"),
    )

    async def hold(key: Path, count: int) -> list[asyncssh.SSHClientConnection]:
        return [
            await asyncssh_client(host.port, client_keys=[str(key)]).__aenter__()
            for _ in range(count)
        ]

    async def scenario() -> None:
        alice = await hold(keys.client_key, 2)
        over_key = run_ssh(host.port, keys.client_key, "127.0.0.1", "'third'")
        assert over_key.returncode == 255
        assert "2 connections are logged in with this key already" in over_key.stderr
        assert "(max_connections_per_key)" in over_key.stderr
        bob = await hold(second_key, 1)
        over_all = run_ssh(host.port, second_key, "127.0.0.1", "'fourth'")
        assert "3 connections are logged in already (max_connections)" in over_all.stderr
        alice[0].close()
        await alice[0].wait_closed()
        wait_for(
            lambda: run_ssh(host.port, second_key, "127.0.0.1", "'room'").stdout == "'room'\n",
            10,
            "room for a login once one left",
        )
        for connection in [*alice[1:], *bob]:
            connection.close()

    try:
        asyncio.run(scenario())
        assert not [e for e in read_events(audit_file) if e["event"] == "penalty"]
    finally:
        stop_host(host)


def test_unused_connections_are_closed(keys: Keys) -> None:
    """unused_connection_timeout: a logged-in connection with no session is closed; one
    whose session runs longer than that is not, until its session has ended."""
    host = start_host(keys, "--set", "unused_connection_timeout=1")

    async def scenario() -> None:
        async with asyncssh_client(host.port, client_keys=[str(keys.client_key)]) as idle:
            await asyncio.wait_for(idle.wait_closed(), 10)
        async with asyncssh_client(host.port, client_keys=[str(keys.client_key)]) as busy:
            result = await busy.run("import time; time.sleep(1.5); 'slept'")
            assert result.stdout == "'slept'\n"
            await asyncio.wait_for(busy.wait_closed(), 10)

    try:
        asyncio.run(scenario())
    finally:
        stop_host(host)


def test_a_session_still_closing_does_not_count(keys: Keys) -> None:
    """max_sessions=1: a session that has ended but whose close the client has not
    answered yet does not keep the next session out."""
    host = start_host(keys, "--set", "max_sessions=1")
    channel = ChannelZero()  # never answers the server's close

    async def scenario() -> str:
        async with asyncssh_client(host.port, client_keys=[str(keys.client_key)]) as connection:
            connection._channels[0] = channel  # type: ignore[assignment]
            send_raw(connection, [channel_open()])
            await wait_for_message(channel, MSG_CHANNEL_OPEN_CONFIRMATION)
            send_raw(connection, [exec_request("'first'")])
            await wait_for_message(channel, MSG_CHANNEL_CLOSE)  # ended; close not answered
            result = await connection.run("'second'")
            return str(result.stdout)

    try:
        assert asyncio.run(scenario()) == "'second'\n"
    finally:
        stop_host(host)


OUT_OF_DESCRIPTORS_HOST = """
import logging, os, resource, sys, time, manhole_ssh
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
manhole = manhole_ssh.install(
    port=0, authorized_keys={keys!r}, host_key={host_key!r}, login_grace_time=60,
    max_startups=1000, per_source_max_startups=1000,
)
exec_code = "'warm'"  # asyncssh and the server are loaded: their files are open by now
limit = len(os.listdir("/proc/self/fd")) + 24
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print("PORT", manhole.port, flush=True)
while True:
    time.sleep(1)
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def test_out_of_descriptors_pauses_the_listener(keys: Keys, tmp_path: Path) -> None:
    """A host at its file limit (idle clients hold every descriptor): the listener pauses
    instead of spinning (little CPU, a few log lines), and once the clients leave it
    accepts again and a login gets in."""
    log_file = tmp_path / "host.log"
    code = OUT_OF_DESCRIPTORS_HOST.format(
        keys=str(keys.authorized_keys), host_key=str(keys.host_key)
    )
    with log_file.open("wb") as log:
        host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=log)
    clients: list[socket.socket] = []
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline().split()[1])
        for _ in range(60):  # more than the host has descriptors left (from elsewhere:
            # leaving without a key, they earn their own address a penalty)
            clients.append(socket.create_connection(("127.0.0.1", port), 10, ("127.0.10.1", 0)))
        wait_for(lambda: "accept()" in log_file.read_text(), 15, "the host to run out")
        cpu_before, started = _cpu_seconds(host.pid), time.monotonic()
        time.sleep(2)  # measuring a rate: how busy the host is while it is out
        busy = (_cpu_seconds(host.pid) - cpu_before) / (time.monotonic() - started)
        accept_lines = [line for line in log_file.read_text().splitlines() if "accept" in line]
        assert len(accept_lines) <= 2, accept_lines[:5]
        assert busy < 0.5, f"the host used {busy:.0%} of a CPU while out of descriptors"
        for client in clients:
            client.close()
        clients.clear()
        wait_for(
            lambda: exec_code(port, keys.client_key, "'back'").stdout == "'back'\n",
            20,
            "a login once descriptors are free again",
        )
        assert host.poll() is None
    finally:
        for client in clients:
            with contextlib.suppress(OSError):
                client.close()
        host.kill()
        host.wait()
        if host.stdout is not None:
            host.stdout.close()
