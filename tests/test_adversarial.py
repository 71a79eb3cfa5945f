"""Hostile clients: each leaves the host process running, serving, and within bounds."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
from pathlib import Path

import asyncssh
from conftest import (
    Host,
    Keys,
    asyncssh_client,
    exec_code,
    ssh_argv,
    start_host,
    stop_host,
    wait_for,
)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_a_huge_packet_length_is_refused_without_memory(host: Host, keys: Keys) -> None:
    """A packet header announcing 0x7ffffff0 bytes: the server must neither wait for nor
    allocate them, but close the connection."""
    assert exec_code(host.port, keys.client_key, "'warm'").returncode == 0  # asyncssh loaded
    before = rss_kb(host.process.pid)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", host.port), timeout=10) as raw:
            assert raw.recv(256).startswith(b"SSH-2.0-manhole_ssh")
            raw.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + struct.pack(">I", 0x7FFFFFF0) + bytes(60))
            read_until_closed(raw)
    assert rss_kb(host.process.pid) - before < 10_000
    assert exec_code(host.port, keys.client_key, "'still here'").stdout == "'still here'\n"


def test_200_idle_connections_from_one_source(keys: Keys) -> None:
    """200 connections from 127.0.0.2 that never log in: all but per_source_max_startups
    are dropped at once, those are cut at login_grace_time, and a login from 127.0.0.1
    gets in meanwhile."""
    host = start_host(keys, "--set", "login_grace_time=3")
    idle: list[socket.socket] = []
    try:
        for _ in range(200):
            try:
                connection = socket.create_connection(
                    ("127.0.0.1", host.port), 10, ("127.0.0.2", 0)
                )
            except OSError:
                continue  # refused outright: fine
            connection.settimeout(15)
            idle.append(connection)
        result = subprocess.run(
            ssh_argv(host.port, keys.client_key, "-o", "ConnectTimeout=5", "127.0.0.1", "'in'"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.stdout == "'in'\n", result.stderr
        # Every idle connection ends: at once (over the limits) or at the grace time.
        for connection in idle:
            read_until_closed(connection)  # a timeout here (15 s) fails the test
        assert host.alive()
    finally:
        for connection in idle:
            connection.close()
        stop_host(host)


def test_500_failed_logins(host: Host, keys: Keys) -> None:
    """500 logins with a wrong key, from ten sources: each source earns penalties, the
    host keeps serving, and a good key from another source gets in."""
    wrong_key = asyncssh.generate_private_key("ssh-ed25519")

    async def fail_many() -> int:
        refused = 0
        for attempt in range(500):
            source = f"127.0.2.{attempt % 10 + 1}"
            try:
                async with asyncssh_client(
                    host.port, local_addr=(source, 0), client_keys=[wrong_key], password=None
                ) as connection:
                    await connection.run("'must not run'")
            except (asyncssh.Error, OSError):
                refused += 1
        return refused

    assert asyncio.run(fail_many()) == 500
    assert exec_code(host.port, keys.client_key, "'good key'").stdout == "'good key'\n"
    assert host.alive()


def test_output_to_a_client_that_stops_reading_is_bounded(host: Host, keys: Keys) -> None:
    """A statement printing without end to a client that reads nothing: the writer waits
    (back-pressure) instead of piling output up in the host's memory."""
    assert exec_code(host.port, keys.client_key, "'warm'").returncode == 0
    before = rss_kb(host.process.pid)
    flood = subprocess.Popen(
        ssh_argv(host.port, keys.client_key, "127.0.0.1", "while True: print('x' * 1000)"),
        stdout=subprocess.PIPE,  # never read
        stderr=subprocess.DEVNULL,
    )
    try:
        blocked = (
            "import sys; any('streams.py' in line and 'write' in line for frame in "
            "sys._current_frames().values() for line in __import__('traceback')"
            ".format_stack(frame))"
        )
        wait_for(
            lambda: exec_code(host.port, keys.client_key, blocked).stdout == "True\n",
            20,
            "the flooding statement to wait in its write",
        )
        assert rss_kb(host.process.pid) - before < 20_000
    finally:
        flood.kill()
        flood.wait()
    assert exec_code(host.port, keys.client_key, "'still here'").stdout == "'still here'\n"
