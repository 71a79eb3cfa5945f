"""Every option of :func:`manhole_ssh.install`, declared once.

``OPTIONS`` is the one list: its name, its type (as ``install()`` annotates it), its
default, how the environment variable ``MANHOLE_SSH_<NAME>`` is read (``None``: no
variable, the option is an object), its ``manhole-ssh`` flag if it has one, the default as
the README shows it, and one line on what it does. ``config.py`` reads the environment
kinds and flags from it; ``tests/test_options.py`` checks ``install()``'s signature,
``Config.build``, ``Limits``, the command line and the README's table against it.
"""

from typing import NamedTuple

__all__ = ["OPTIONS", "Option", "by_name"]


class Option(NamedTuple):
    name: str
    type: str  # as install() annotates it
    default: object
    environment: str | None  # how MANHOLE_SSH_<NAME> is read; None: no variable
    flag: str | None  # the manhole-ssh command's flag, if any
    shown_default: str  # the default, as the README's table shows it
    summary: str  # what it does, in one line


OPTIONS: tuple[Option, ...] = (
    Option(
        "port",
        "int | None",
        None,
        "int",
        "--port",
        "`2222`",
        "TCP port",
    ),
    Option(
        "bind_address",
        "str | tuple[str, int] | None",
        None,
        "text",
        "--bind",
        '`"127.0.0.1"`',
        "a loopback address, or `(address, port)`",
    ),
    Option(
        "authorized_keys",
        "str | os.PathLike[str] | Callable[[], str | Iterable[str]]"
        " | Sequence[str | os.PathLike[str] | Callable[[], str | Iterable[str]]] | None",
        None,
        "paths",
        "--authorized-keys",
        "`~/.ssh/authorized_keys`",
        "who may log in (OpenSSH's format): files, or a callable returning the lines",
    ),
    Option(
        "host_key",
        "str | os.PathLike[str] | None",
        None,
        "text",
        "--host-key",
        "`$XDG_STATE_HOME/manhole-ssh/ssh_host_ed25519_key`",
        "the server's private key file",
    ),
    Option(
        "locals",
        "Mapping[str, Any] | None",
        None,
        None,
        None,
        "`None`",
        "names every session starts with (the live objects, not copies)",
    ),
    Option(
        "loop",
        "asyncio.AbstractEventLoop | None",
        None,
        None,
        None,
        "the running loop, if `install()` is called from one",
        "the host's asyncio loop, where top-level `await` runs",
    ),
    Option(
        "daemon",
        "bool",
        True,
        "bool",
        None,
        "`True`",
        "whether the server thread is a daemon thread",
    ),
    Option(
        "log_level",
        "int | str | None",
        None,
        "text",
        None,
        "`None`",
        "level for the `manhole_ssh` loggers",
    ),
    Option(
        "audit_file",
        "str | os.PathLike[str] | None",
        None,
        "text",
        None,
        "`None`",
        "also append the audit trail (JSON lines) to this file, made with mode 0600",
    ),
    Option(
        "login_grace_time",
        "float",
        30.0,
        "seconds",
        None,
        "`30`",
        "seconds a connection may take to authenticate",
    ),
    Option(
        "max_auth_tries",
        "int",
        6,
        "int",
        None,
        "`6`",
        "refused keys per connection before it is cut",
    ),
    Option(
        "max_startups",
        "int | str",
        "10:30:100",
        "text",
        None,
        '`"10:30:100"`',
        'unauthenticated connections at once: N, or sshd\'s "start:rate:full" early drop',
    ),
    Option(
        "per_source_max_startups",
        "int",
        3,
        "int",
        None,
        "`3`",
        "the same, per client address",
    ),
    Option(
        "max_sessions",
        "int",
        10,
        "int",
        None,
        "`10`",
        "open sessions per connection",
    ),
    Option(
        "idle_timeout",
        "float | None",
        None,
        "seconds or none",
        None,
        "`None`",
        "end a session after this many seconds with nothing typed and nothing running",
    ),
    Option(
        "session_timeout",
        "float | None",
        None,
        "seconds or none",
        None,
        "`None`",
        "end a session this many seconds after it began",
    ),
    Option(
        "max_connections",
        "int",
        50,
        "int",
        None,
        "`50`",
        "logged-in connections at once",
    ),
    Option(
        "max_connections_per_key",
        "int",
        10,
        "int",
        None,
        "`10`",
        "the same, per key",
    ),
    Option(
        "unused_connection_timeout",
        "float | None",
        None,
        "seconds or none",
        None,
        "`None`",
        "close a logged-in connection with no session open this long (UnusedConnectionTimeout)",
    ),
    Option(
        "per_source_net_block_size",
        "int | str",
        "32:128",
        "text",
        None,
        '`"32:128"`',
        'address bits counted as one source, "IPV4:IPV6" (sshd\'s PerSourceNetBlockSize)',
    ),
    Option(
        "per_source_penalty_exempt_list",
        "str | Sequence[str]",
        "",
        "text",
        None,
        '`""`',
        "addresses or CIDR blocks never penalized (sshd's PerSourcePenaltyExemptList)",
    ),
    Option(
        "activate_on",
        "int | str | None",
        None,
        "text",
        "--activate-on",
        "`None`",
        'a signal (`signal.SIGUSR1`, `"USR1"`): listen only once the process receives it',
    ),
    Option(
        "oneshot",
        "bool",
        False,
        "bool",
        None,
        "`False`",
        "stop the manhole once its first session has ended",
    ),
    Option(
        "socket_path",
        "str | os.PathLike[str] | None",
        None,
        "text",
        "--socket-path",
        "`None`",
        "also (or only) listen on this Unix socket, mode 0600; {pid} becomes the process id",
    ),
    Option(
        "post_quantum_only",
        "bool",
        False,
        "bool",
        None,
        "`False`",
        "offer only the ML-KEM hybrid key exchange (`mlkem768x25519-sha256`)",
    ),
    Option(
        "on_fork",
        "str",
        "stop",
        "text",
        None,
        '`"stop"`',
        'what a child made by os.fork() gets: "stop" (no manhole) or "restart" (its own)',
    ),
    Option(
        "revoked_keys",
        "str | os.PathLike[str] | None",
        None,
        "text",
        None,
        "`None`",
        "keys refused even if authorized (sshd's RevokedKeys: a KRL or keys), failing closed",
    ),
    Option(
        "end_sessions_on_key_removal",
        "bool",
        False,
        "bool",
        None,
        "`False`",
        "a key removed from authorized_keys (or revoked) also loses its open sessions",
    ),
    Option(
        "allow_remote",
        "bool",
        False,
        "bool",
        "--allow-remote",
        "`False`",
        "allow a `bind_address` that other machines can reach",
    ),
    Option(
        "session_recordings",
        "str | os.PathLike[str] | None",
        None,
        "text",
        None,
        "`None`",
        "a folder where each terminal session is recorded as an asciicast v2 file",
    ),
    Option(
        "breakpoint_timeout",
        "float",
        300.0,
        "seconds",
        None,
        "`300`",
        "seconds a breakpoint (set_trace()) waits for an engineer to attach before going on",
    ),
)


def by_name() -> dict[str, Option]:
    return {option.name: option for option in OPTIONS}
