"""Listening sockets, made in the caller's thread (so a busy port is the caller's error)
with the standard library only (so that making them costs no import)."""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

from ..access.file_modes import check_not_writable_by_others
from ..config import spelled
from ..errors import AddressInUse, ConfigError
from ..green.originals import socket_class

__all__ = ["AddressInUse", "bind_tcp", "bind_unix", "peer_credentials"]


_BACKLOG = 64


def bind_tcp(address: str, port: int) -> socket.socket:
    host = "127.0.0.1" if address == "localhost" else address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket_class()(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise AddressInUse(
                f"port {port} on {host} is already in use (another manhole or program "
                f"listens there): give another port, or {spelled('port', '0')} for any free one"
            ) from None
        raise ConfigError(f"cannot listen on {host} port {port}: {error.strerror}") from None
    sock.setblocking(False)
    return sock


def bind_unix(path: Path) -> socket.socket:
    """A Unix socket with mode 0600 at ``path``, in a folder only its owner can change.

    A stale socket file (nobody accepts on it) is replaced; a live one or any other file
    is an error.
    """
    check_not_writable_by_others(path.parent, "socket folder")
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ConfigError(f"socket_path {path} exists and is not a socket: remove it first")
        with socket_class()(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(str(path)) == 0:
                raise AddressInUse(
                    f"socket_path {path} is in use by a running program (another manhole?): "
                    f"give another, or one with {{pid}} in it "
                    f"({spelled('socket_path', '/run/app/manhole-{pid}.sock')})"
                )
        path.unlink()
    sock = socket_class()(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # (The umask is the host's to set, so the mode is set after bind(); before the
        # chmod, a connection from another user would still be refused by its peer uid.)
        os.chmod(path, 0o600)
        sock.listen(_BACKLOG)
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {path}: {error.strerror}") from None
    sock.setblocking(False)
    return sock


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """The (pid, uid, gid) of the process at the other end of a Unix socket (Linux)."""
    import struct

    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", credentials)
    return pid, uid, gid
