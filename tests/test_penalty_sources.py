"""Penalties against the running server: they hit whoever fails (even without trying a
key), never whoever the crowd turned away, and group sources as configured: by netblock,
with an exempt list, and on loopback by the local user owning the client's socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from conftest import (
    Keys,
    exec_code,
    read_events,
    run_ssh,
    socket_of_user,
    start_host,
    stop_host,
    wait_for,
)


def connect(port: int, source: str, made_by: int | None = None) -> socket.socket:
    """A raw TCP connection from ``source`` (made by user ``made_by``, if given)."""
    if made_by is None:
        return socket.create_connection(("127.0.0.1", port), 10, (source, 0))
    connection = socket_of_user(made_by)
    connection.settimeout(10)
    connection.bind((source, 0))
    connection.connect(("127.0.0.1", port))
    return connection


def leave_without_a_key(connection: socket.socket) -> None:
    """Leave, and wait until the server has closed its side (so that it has counted this
    connection before the next one comes)."""
    with connection:
        connection.shutdown(socket.SHUT_WR)
        while connection.recv(4096):
            pass


def penalties(audit_file: Path) -> list[dict[str, object]]:
    return [event for event in read_events(audit_file) if event["event"] == "penalty"]


def refusals(audit_file: Path) -> list[str]:
    return [
        str(e["refused"])
        for e in read_events(audit_file)
        if e["event"] == "connect" and e["refused"]
    ]


def test_the_crowd_never_strikes_whoever_it_turns_away(keys: Keys, tmp_path: Path) -> None:
    """While max_startups is full, a login from 127.0.11.9 is refused five times; once
    the crowd has gone, it gets in at once: being refused earned it no penalty."""
    audit_file = tmp_path / "audit.jsonl"
    host = start_host(keys, "--set", "max_startups=2", "--set", f"audit_file={audit_file}")
    try:
        crowd = [connect(host.port, f"127.0.11.{number}") for number in (1, 2)]
        for connection in crowd:
            assert connection.recv(64).startswith(b"SSH-2.0-manhole_ssh")
        for _ in range(5):
            assert (
                run_ssh(host.port, keys.client_key, "-b", "127.0.11.9", "127.0.0.1", "1").returncode
                == 255
            )
        for connection in crowd:
            leave_without_a_key(connection)
        result = run_ssh(host.port, keys.client_key, "-b", "127.0.11.9", "127.0.0.1", "'in'")
        assert result.stdout == "'in'\n", result.stderr
        assert len(refusals(audit_file)) == 5
        assert not penalties(audit_file)
    finally:
        stop_host(host)


@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another local user needs root")
def test_on_loopback_another_local_user_is_penalized_not_the_admin(
    keys: Keys, tmp_path: Path
) -> None:
    """Another local user floods from changing loopback addresses, 127.0.0.1 among them,
    never trying a key: that user is penalized wherever it connects from, while the
    admin (this process's user) still gets in from the same 127.0.0.1."""
    audit_file = tmp_path / "audit.jsonl"
    host = start_host(keys, "--set", f"audit_file={audit_file}")
    nobody = 65534
    try:
        for number in range(1, 40):
            source = "127.0.0.1" if number % 2 else f"127.0.12.{number}"
            leave_without_a_key(connect(host.port, source, made_by=nobody))
            if penalties(audit_file):
                break
        (penalty,) = penalties(audit_file)
        assert penalty["source"] == f"uid {nobody} on loopback"
        assert penalty["offense"] == "left without trying a key"
        leave_without_a_key(connect(host.port, "127.0.12.200", made_by=nobody))
        wait_for(lambda: refusals(audit_file), 10, "the refusal of a fresh address")
        assert refusals(audit_file)[0].startswith(f"uid {nobody} on loopback is penalized")
        assert exec_code(host.port, keys.client_key, "'admin in'").stdout == "'admin in'\n"
    finally:
        stop_host(host)


def test_grace_time_netblocks_and_the_exempt_list(keys: Keys, tmp_path: Path) -> None:
    """Connections cut at login_grace_time earn strikes, counted per /24 as configured;
    the exempt /24 earns none. A key's from= still sees the client's own address."""
    audit_file = tmp_path / "audit.jsonl"
    key_line = keys.client_key.with_suffix(".pub").read_text()
    keys.authorized_keys.write_text(f'from="127.0.13.50" {key_line}')
    host = start_host(
        keys,
        *("--set", "login_grace_time=1", "--set", "per_source_net_block_size=24:64"),
        *("--set", "per_source_penalty_exempt_list=127.0.14.0/24"),
        *("--set", f"audit_file={audit_file}"),
    )
    try:
        login = run_ssh(host.port, keys.client_key, "-b", "127.0.13.50", "127.0.0.1", "'in'")
        assert login.stdout == "'in'\n", login.stderr
        idle = [
            connect(host.port, f"127.0.{block}.{number}")
            for block in (13, 14)
            for number in (1, 2, 3)
        ]
        for connection in idle:
            with connection:
                while connection.recv(4096):  # until the server cuts it
                    pass
        wait_for(lambda: penalties(audit_file), 10, "a penalty")
        (penalty,) = penalties(audit_file)
        assert penalty["source"] == "127.0.13.0/24"
        assert "login_grace_time" in str(penalty["offense"])
        connect(host.port, "127.0.13.99").close()
        leave_without_a_key(connect(host.port, "127.0.14.99"))
        wait_for(lambda: refusals(audit_file), 10, "the refusal")
        assert refusals(audit_file) == [refusals(audit_file)[0]] and refusals(audit_file)[
            0
        ].startswith("127.0.13.0/24 is penalized")
    finally:
        stop_host(host)
