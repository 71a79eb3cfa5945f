"""``manhole-ssh list`` and ``manhole-ssh connect``: find this user's running manholes
from their discovery records, and enter one with the user's own ``ssh``."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..discovery import (
    DiscoveryError,
    Record,
    known_hosts_path,
    read_records,
    runtime_folder,
)
from ..errors import ConfigError

__all__ = ["connect", "list_manholes"]


def _records() -> list[Record]:
    try:
        return read_records()
    except DiscoveryError as error:
        raise ConfigError(str(error)) from None


def _age(started: float) -> str:
    seconds = max(0, int(time.time() - started))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def list_manholes() -> int:
    """Print a table of the running manholes (none: a line saying where we looked)."""
    records = _records()
    if not records:
        print(f"no running manhole (records are kept in {runtime_folder()})")
        return 0
    rows = [["PID", "LISTENS ON", "HOST KEY", "UP", "COMMAND"]]
    rows += [
        [
            str(record.pid),
            record.endpoint(),
            record.fingerprint or "(made at the first connection)",
            _age(record.started),
            record.name,
        ]
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[4]]))
    return 0


def _choose(records: list[Record], pid: int | None) -> Record:
    if pid is not None:
        for record in records:
            if record.pid == pid:
                return record
        owner = _owner_of(pid)
        if owner is not None and owner != os.getuid():
            user = _user_name(owner)
            raise ConfigError(
                f"process {pid} belongs to user {user}: the records of running manholes are "
                f"kept per user, and {user}'s are not readable by you. Run it as that user: "
                f"sudo -u {user} manhole-ssh connect {pid}"
            )
        raise ConfigError(f"no running manhole in process {pid}: see `manhole-ssh list`")
    if not records:
        raise ConfigError(
            f"no running manhole found (records are kept in {runtime_folder()}): start one "
            "with manhole_ssh.install(), or give the address to ssh yourself"
        )
    if len(records) > 1:
        pids = ", ".join(str(record.pid) for record in records)
        raise ConfigError(
            f"{len(records)} manholes are running (pids {pids}): name one, "
            "`manhole-ssh connect PID`; `manhole-ssh list` shows them"
        )
    return records[0]


def _owner_of(pid: int) -> int | None:
    """The user id process ``pid`` runs as, None if there is no such process."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def ssh_argv(record: Record, known_hosts: Path | None, ssh_args: Sequence[str]) -> list[str]:
    """The ``ssh`` command that enters ``record``'s manhole; ``ssh_args`` (options, then
    an optional command) follow the destination, where OpenSSH still reads options."""
    alias = f"manhole-ssh-{record.pid}"
    argv = ["ssh"]
    if known_hosts is not None:
        argv += [
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"HostKeyAlias={alias}",
        ]
    if record.port is not None and record.address is not None:
        return [*argv, "-p", str(record.port), record.address, *ssh_args]
    if record.socket_path is None:
        raise ConfigError(f"the record of process {record.pid} names no address")
    proxy = shlex.join([sys.executable, "-m", "manhole_ssh", "proxy", record.socket_path])
    return [*argv, "-o", "ProxyCommand=" + proxy.replace("%", "%%"), alias, *ssh_args]


def _with_host_key(record: Record, timeout: float = 15.0) -> Record:
    """The record of a manhole whose default host key is made at its first connection:
    connect once, so that it makes the key and writes it in its record, then read that.
    (Without it, ssh would ask whether to trust an unknown key, or refuse in batch mode.)"""
    import socket

    if record.port is not None and record.address is not None:
        family = socket.AF_INET6 if ":" in record.address else socket.AF_INET
        address: Any = (record.address, record.port)
    elif record.socket_path is not None:
        family, address = socket.AF_UNIX, record.socket_path
    else:
        return record
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        probe.connect(address)
        probe.recv(256)  # the server's version line: its key is made by then
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for fresh in _records():
            if fresh.pid == record.pid and fresh.host_key is not None:
                return fresh
        time.sleep(0.05)
    return record


def _write_known_hosts(record: Record) -> Path | None:
    """A known_hosts file for the record's host key, beside the record (removed with it)."""
    if record.host_key is None:
        return None
    path = known_hosts_path(record.pid)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as known_hosts_file:
        known_hosts_file.write(f"manhole-ssh-{record.pid} {record.host_key}\n")
    os.replace(temporary, path)
    return path


def connect(pid: int | None, ssh_args: Sequence[str]) -> int:
    """Become ``ssh`` to the chosen manhole (returns only on failure).

    The host key comes from the record, written by the manhole itself into a folder only
    this user can write, so ssh checks it strictly instead of asking to trust it.
    """
    record = _choose(_records(), pid)
    if record.activate_on is not None:
        name = record.activate_on
        raise ConfigError(
            f"the manhole of process {record.pid} waits for {name} to listen: "
            f"kill -{name.removeprefix('SIG')} {record.pid}, then connect again"
        )
    if record.host_key is None:
        record = _with_host_key(record)
    argv = ssh_argv(record, _write_known_hosts(record), ssh_args)
    sys.stdout.flush()
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise ConfigError("the OpenSSH client (ssh) is not installed") from None
