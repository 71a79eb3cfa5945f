"""manhole-ssh: an SSH server inside a running Python process, with a ptpython REPL.

::

    import manhole_ssh
    manhole_ssh.install()            # then: ssh -p 2222 localhost

Only this module is the public API. Importing it is cheap: asyncssh and ptpython are
imported on the manhole's own thread, when it starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .manhole import Manhole, install_once, installed
from .manhole import uninstall as uninstall_installed

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("manhole_ssh")

__all__ = [
    "ConfigError",
    "Manhole",
    "breakpoint",
    "install",
    "installed",
    "set_trace",
    "set_trace_async",
    "uninstall",
]
__version__ = "0.1.0"


def install(
    *,
    port: int | None = None,
    bind_address: str | tuple[str, int] | None = None,
    authorized_keys: str
    | os.PathLike[str]
    | Callable[[], str | Iterable[str]]
    | Sequence[str | os.PathLike[str] | Callable[[], str | Iterable[str]]]
    | None = None,
    host_key: str | os.PathLike[str] | None = None,
    locals: Mapping[str, Any] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    daemon: bool = True,
    log_level: int | str | None = None,
    audit_file: str | os.PathLike[str] | None = None,
    login_grace_time: float = 30.0,
    max_auth_tries: int = 6,
    max_startups: int | str = "10:30:100",
    per_source_max_startups: int = 3,
    max_sessions: int = 10,
    idle_timeout: float | None = None,
    session_timeout: float | None = None,
    max_connections: int = 50,
    max_connections_per_key: int = 10,
    unused_connection_timeout: float | None = None,
    per_source_net_block_size: int | str = "32:128",
    per_source_penalty_exempt_list: str | Sequence[str] = "",
    activate_on: int | str | None = None,
    oneshot: bool = False,
    socket_path: str | os.PathLike[str] | None = None,
    post_quantum_only: bool = False,
    on_fork: str = "stop",
    revoked_keys: str | os.PathLike[str] | None = None,
    end_sessions_on_key_removal: bool = False,
    allow_remote: bool = False,
    session_recordings: str | os.PathLike[str] | None = None,
    breakpoint_timeout: float = 300.0,
) -> Manhole:
    """Open the manhole: an SSH server on ``bind_address:port`` (127.0.0.1:2222).

    :param port: TCP port; 0 picks any free one (read it back from ``.port``).
    :param bind_address: a loopback address, or ``(address, port)``; another address
        (``"0.0.0.0"``: every interface) needs ``allow_remote=True``.
    :param authorized_keys: who may log in, in OpenSSH's authorized_keys format: a file
        (default: ``~/.ssh/authorized_keys`` of the process user), a list of files, or a
        callable returning the lines (keys held in a secret store). Each is re-read at
        every login; a callable runs on the manhole's thread, so it should be quick.
    :param host_key: the server's private key file; by default
        ``$XDG_STATE_HOME/manhole-ssh/ssh_host_ed25519_key``, made on first use
        (``manhole-ssh host-key`` makes it beforehand and prints its fingerprint).
    :param locals: names every session starts with (the live objects, not copies).
    :param loop: the host's asyncio loop, where top-level ``await`` runs; taken
        automatically when ``install()`` is called from a running loop.
    :param daemon: whether the server thread is a daemon thread.
    :param log_level: level for the ``manhole_ssh`` loggers.
    :param audit_file: also append the audit trail (JSON lines, see
        ``manhole_ssh.audit``) to this file, created with mode 0600.
    :param login_grace_time: seconds a connection may take to authenticate.
    :param max_auth_tries: refused keys per connection before it is cut.
    :param max_startups: unauthenticated connections at once: a number (more are
        dropped), or sshd's ``"start:rate:full"``: from ``start`` on, ``rate`` % of new
        connections are dropped at random, rising to all of them at ``full``.
    :param per_source_max_startups: the same, per client address.
    :param max_sessions: open sessions per connection.
    :param idle_timeout: end a session after this many seconds with nothing typed and
        nothing running (``None``: never).
    :param session_timeout: end a session this many seconds after it began (``None``: never).
    :param max_connections: logged-in connections at once; a login past it is refused
        with a message (and no penalty).
    :param max_connections_per_key: the same, per key.
    :param unused_connection_timeout: close a logged-in connection that has had no session
        open for this many seconds (sshd's UnusedConnectionTimeout; ``None``: never).
    :param per_source_net_block_size: address bits that count as one source for penalties
        and ``per_source_max_startups``, ``"IPV4:IPV6"`` (sshd's PerSourceNetBlockSize;
        ``"24:64"`` groups each /24 and /64). On loopback, the local user owning the
        client's socket is the source instead.
    :param per_source_penalty_exempt_list: addresses or CIDR blocks never penalized
        (comma-separated or a list; sshd's PerSourcePenaltyExemptList).
    :param activate_on: a signal (``signal.SIGUSR1``, ``"USR1"``): listen only once the
        process receives it; until then nothing listens and nothing heavy is imported.
        Needs ``install()`` in the main thread; a handler already set is still called.
    :param oneshot: stop the manhole once its first session has ended.
    :param socket_path: also (or, if neither port nor bind_address is given, only) listen
        on this Unix socket, made with mode 0600; ``{pid}`` in it becomes the process id.
        Only the process's user and root may connect, and SSH authentication still applies:
        ``ssh -o ProxyCommand="manhole-ssh proxy PATH" x``.
    :param post_quantum_only: offer only the ML-KEM hybrid key exchange
        (``mlkem768x25519-sha256``); OpenSSH clients older than 9.9 cannot connect.
    :param revoked_keys: a file of public keys refused even if authorized (sshd's
        RevokedKeys; plain keys, one per line); re-read when it changes. If it becomes
        unreadable or unsafe, every key is refused.
    :param end_sessions_on_key_removal: when a key leaves authorized_keys (or enters
        revoked_keys), also end the open sessions it logged in, within a second.
    :param on_fork: what a child made by ``os.fork()`` gets: ``"stop"``, no manhole (the
        inherited sockets are closed in it); ``"restart"``, a manhole of its own, with
        the same options (use ``port=0`` or a ``socket_path`` with ``{pid}``).
    :param allow_remote: allow a ``bind_address`` that other machines can reach. Key
        authentication still applies; a warning says what is exposed.
    :param session_recordings: a folder (0700, made if missing) where each terminal
        session is recorded as an asciicast v2 file (0600) for ``asciinema play``.
    :param breakpoint_timeout: seconds a breakpoint (:func:`set_trace`) waits for an
        engineer to attach before its thread goes on; a location whose breakpoint timed
        out or was let go stays quiet this long.
    :raises ConfigError: a file is missing or unsafe, the port is in use, an option is
        wrong, or a manhole is already installed.
    """
    options = dict(vars())  # the arguments, by name: Config.from_options checks them all
    asyncio_module = sys.modules.get("asyncio")  # without it, no loop can be running
    if loop is None and asyncio_module is not None:
        with contextlib.suppress(RuntimeError):
            options["loop"] = asyncio_module.get_running_loop()
    from .config import Config

    return install_once(Config.from_options(options))


def uninstall() -> None:
    """Stop the manhole that :func:`install` started, if any."""
    uninstall_installed()


def _breakpoints() -> Any:
    """manhole_ssh.debug.breakpoints, imported at the first breakpoint (a sys.modules
    look-up after that: a breakpoint in a hot loop stays cheap)."""
    module = sys.modules.get("manhole_ssh.debug.breakpoints")
    if module is None:
        from .debug import breakpoints as module
    return module


def set_trace(*, timeout: float | None = None) -> None:
    """Park the calling thread until an engineer attaches pdb from a session
    (``breakpoints()``, ``attach()``), or ``timeout`` seconds (``breakpoint_timeout``)
    pass. With no manhole running, log a warning and go on."""
    _breakpoints().set_trace(frame=sys._getframe(1), timeout=timeout)


def breakpoint(*args: object, **kwargs: object) -> None:
    """``PYTHONBREAKPOINT=manhole_ssh.breakpoint``: ``breakpoint()`` is :func:`set_trace`."""
    _breakpoints().set_trace(frame=sys._getframe(1))


async def set_trace_async(*, timeout: float | None = None) -> None:
    """``await manhole_ssh.set_trace_async()``: wait for an engineer without blocking the
    loop, then debug the awaiting coroutine (see ``manhole_ssh.debug.breakpoints``)."""
    await _breakpoints().set_trace_async(timeout=timeout, frame=sys._getframe(1))
