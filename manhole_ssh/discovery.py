"""Discovery records: where each running manhole of this user listens (written and read
here: by the manhole, by ``install()`` to name who holds a port, by the command line).

Each manhole writes ``<pid>.json`` in ``$XDG_RUNTIME_DIR/manhole-ssh/`` (or
``/tmp/manhole-ssh-<uid>/`` where that variable is unset), a folder of mode 0700 that
only the user can read. ``manhole-ssh list`` and ``manhole-ssh connect`` read them. A
record whose process is gone, or whose pid now belongs to another process, is stale: it is
ignored and removed by the next reader.

The record holds the host's public key, so that ``manhole-ssh connect`` can check the
server without asking the user to trust it on first use: the folder is the user's own,
so whoever could forge a record could already run code as the user.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from .errors import DiscoveryError

__all__ = [
    "DiscoveryError",
    "Record",
    "holder_of",
    "is_zombie",
    "known_hosts_path",
    "process_start_ticks",
    "read_records",
    "remove_dead_socket",
    "remove_record",
    "runtime_folder",
    "write_record",
]

FOLDER_NAME = "manhole-ssh"


def runtime_folder(create: bool = False) -> Path:
    """The folder of records, checked to be a real folder of this user's, mode 0700."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(runtime_dir) / FOLDER_NAME
        if runtime_dir and os.path.isdir(runtime_dir)
        else Path("/tmp") / f"{FOLDER_NAME}-{os.getuid()}"
    )
    if create:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    try:
        status = folder.lstat()
    except FileNotFoundError:
        return folder
    if not stat.S_ISDIR(status.st_mode):
        raise DiscoveryError(f"{folder} is not a folder (a symbolic link or a file is refused)")
    if status.st_uid != os.getuid():
        raise DiscoveryError(f"{folder} belongs to uid {status.st_uid}, not to this user")
    if status.st_mode & 0o077:
        raise DiscoveryError(
            f"{folder} has mode {stat.S_IMODE(status.st_mode):04o}: others may read or write "
            f"it; run `chmod 700 {folder}`"
        )
    return folder


def process_start_ticks(pid: int) -> int | None:
    """When the process began, in clock ticks since boot (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


def is_zombie(pid: int) -> bool:
    """The process has exited and waits for its parent to reap it (Linux's state Z): it
    answers signals, but nothing in it runs."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] in ("Z", "X")


def _command_line() -> str:
    try:
        words = Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        text = " ".join(word.decode(errors="replace") for word in words)
    except OSError:
        text = " ".join([sys.executable, *sys.argv])
    return text if len(text) <= 200 else text[:199] + "…"


def write_record(
    *,
    address: str | None,
    port: int | None,
    socket_path: Path | None,
    host_key: str | None,
    fingerprint: str | None,
    started: float,
    activate_on: str | None = None,
) -> Path:
    """Write (or replace) this process's record, atomically and with mode 0600."""
    folder = runtime_folder(create=True)
    pid = os.getpid()
    record = {
        "pid": pid,
        "name": _command_line(),
        "address": address,
        "port": port,
        "socket_path": str(socket_path) if socket_path is not None else None,
        "host_key": host_key,
        "fingerprint": fingerprint,
        "started": started,
        "process_start": process_start_ticks(pid),
        "activate_on": activate_on,
    }
    path = folder / f"{pid}.json"
    temporary = folder / f".{pid}.json.new"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as record_file:
        record_file.write(_json_object(record))
    os.replace(temporary, path)
    return path


def _json_object(fields: dict[str, object]) -> str:
    """JSON for a flat record of strings, numbers and None, without importing ``json``:
    the record is written by install(), in a host that may not have loaded it (0.4 MB)."""

    def value(item: object) -> str:
        if item is None:
            return "null"
        if isinstance(item, int | float):
            return repr(item)
        text = str(item)
        escaped = "".join(
            f"\\u{ord(char):04x}" if char < " " or char in '"\\' else char for char in text
        )
        return f'"{escaped}"'

    return "{" + ", ".join(f"{value(name)}: {value(item)}" for name, item in fields.items()) + "}"


def known_hosts_path(pid: int) -> Path:
    """Where ``manhole-ssh connect`` puts the known_hosts line of process ``pid``'s record."""
    return runtime_folder() / f"{pid}.known_hosts"


def remove_record(path: Path, socket_path: str | None = None) -> None:
    """Remove a record, and the known_hosts file made from it if any; and, for the record
    of a process that is gone, the socket file it names, if that is still a socket of this
    user's that nobody listens on (a process killed, or ended by ``os._exit``, leaves it)."""
    for stale in (path, path.with_suffix(".known_hosts")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    if socket_path is not None:
        remove_dead_socket(Path(socket_path))


def remove_dead_socket(path: Path) -> None:
    """Remove ``path`` only if it is a Unix socket, owned by this user, that refuses
    connections (nothing listens on it any more)."""
    import socket

    try:
        status = path.lstat()
    except OSError:
        return
    if not stat.S_ISSOCK(status.st_mode) or status.st_uid != os.getuid():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(str(path)) == 0:
            return  # someone listens there: not ours to remove
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class Record(NamedTuple):
    """One running manhole, as ``manhole-ssh list`` shows it."""

    pid: int
    name: str  # the process's command line, shortened
    address: str | None  # TCP address, None if it listens on a Unix socket only
    port: int | None
    socket_path: str | None
    host_key: str | None  # "ssh-ed25519 AAAA…", None until the default key is made
    fingerprint: str | None
    started: float  # time.time() when it began listening
    process_start: int | None  # the process's start time in clock ticks (pid reuse check)
    activate_on: str | None = None  # "SIGUSR1": it listens only once that signal comes

    def endpoint(self) -> str:
        if self.activate_on is not None:
            return f"(waits for kill -{self.activate_on.removeprefix('SIG')} {self.pid})"
        places = []
        if self.port is not None:
            places.append(f"{self.address}:{self.port}")
        if self.socket_path is not None:
            places.append(self.socket_path)
        return " ".join(places)


def _alive(record: Record) -> bool:
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, though not ours: the pid was reused
    if is_zombie(record.pid):
        return False
    started = process_start_ticks(record.pid)
    return record.process_start is None or started is None or started == record.process_start


def _parse(data: Any) -> Record:
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        raise ValueError("not a record")
    fields: dict[str, Any] = {name: data.get(name) for name in Record._fields}
    fields["name"] = str(fields["name"] or "?")
    fields["started"] = float(fields["started"] or 0.0)
    return Record(**fields)


def read_records() -> list[Record]:
    """The live records, oldest first; stale or unreadable ones are removed."""
    folder = runtime_folder()
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = _parse(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            remove_record(path)
            continue
        if _alive(record):
            records.append(record)
        else:
            remove_record(path, record.socket_path)
    return sorted(records, key=lambda record: record.started or 0.0)


def holder_of(port: int | None, socket_path: Path | None, wait: float = 0.3) -> Record | None:
    """The running manhole that listens on ``port`` (any loopback address) or on
    ``socket_path``, if its record says so. A manhole writes its record just after it binds:
    one that a sibling process bound a moment ago is waited for, up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            records = read_records()
        except DiscoveryError:
            return None
        for record in records:
            if record.pid == os.getpid():
                continue
            if port and record.port == port:
                return record
            if socket_path is not None and record.socket_path == str(socket_path):
                return record
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
