"""``manhole-ssh list`` and ``manhole-ssh connect``: find this user's running manholes
from their discovery records, and enter one with the user's own ``ssh``."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .config import ConfigError
from .discovery import DiscoveryError, Record, known_hosts_path, read_records, runtime_folder

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
    argv = ssh_argv(record, _write_known_hosts(record), ssh_args)
    sys.stdout.flush()
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise ConfigError("the OpenSSH client (ssh) is not installed") from None
