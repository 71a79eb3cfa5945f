"""Every option of :func:`manhole_ssh.install`, its default, and its validation.

Validation happens once, in the caller's thread, before anything listens: a mistake is a
:class:`ConfigError` whose message says what to do, never a server that half-starts.
Nothing here imports asyncssh or ptpython, so that ``install()`` stays cheap.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ConfigError
from .options import OPTIONS

KeysCallable = Callable[[], "str | Iterable[str]"]
"""A source of keys held elsewhere (a secret store): returns authorized_keys lines."""
KeySource = Path | KeysCallable

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence
    from typing import TypeAlias

    _OneSource: TypeAlias = str | os.PathLike[str] | KeysCallable
    AuthorizedKeysOption: TypeAlias = _OneSource | Sequence[_OneSource] | None

__all__ = [
    "DEFAULT_BIND_ADDRESS",
    "DEFAULT_PORT",
    "Config",
    "ConfigError",
    "KeySource",
    "KeysCallable",
    "Limits",
    "default_host_key_path",
    "environment_enabled",
    "environment_options",
    "environment_variables",
    "options_given_through",
    "spelled",
]

DEFAULT_PORT = 2222
DEFAULT_BIND_ADDRESS = "127.0.0.1"


def default_host_key_path() -> Path:
    """``$XDG_STATE_HOME/manhole-ssh/ssh_host_ed25519_key`` (``~/.local/state`` if unset)."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state_home) / "manhole-ssh" / "ssh_host_ed25519_key"


def _default_authorized_keys_path() -> Path:
    return Path(os.path.expanduser("~/.ssh/authorized_keys"))


class Limits(NamedTuple):
    """Caps on what clients may hold, named after sshd's options. (A NamedTuple, not a
    dataclass: ``dataclasses`` would cost the unused host a megabyte of imports.)"""

    login_grace_time: float = 30.0  # seconds an unauthenticated connection may stay
    max_auth_tries: int = 6  # failed key offers per connection before it is cut
    # Unauthenticated connections at once, from everywhere: N (a hard cap) or sshd's
    # "start:rate:full" (from `start` on, drop rate% of new ones, rising to all at `full`).
    max_startups: int | str = "10:30:100"
    per_source_max_startups: int = 3  # unauthenticated connections at once, per address
    max_sessions: int = 10  # open sessions per connection
    idle_timeout: float | None = None  # end a session idle this long (nothing typed or running)
    session_timeout: float | None = None  # end a session this long after it began
    # Logged-in connections at once (each holds a descriptor and buffers in the host),
    # overall and per key: far more than people at once, far below a process's file limit.
    max_connections: int = 50
    max_connections_per_key: int = 10
    unused_connection_timeout: float | None = None  # close a login with no session this long
    # Address bits that name one source (sshd's PerSourceNetBlockSize): "IPV4[:IPV6]".
    per_source_net_block_size: int | str = "32:128"
    # Never penalized (sshd's PerSourcePenaltyExemptList): addresses or CIDR blocks,
    # comma-separated, or a list.
    per_source_penalty_exempt_list: str | tuple[str, ...] = ""

    def net_block_sizes(self) -> tuple[int, int]:
        """``per_source_net_block_size`` as (IPv4 bits, IPv6 bits); a lone number is the
        IPv4 size (IPv6 stays 128), as in sshd."""
        value = self.per_source_net_block_size
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str):
            parts = text.split(":")
            if 1 <= len(parts) <= 2 and all(part.strip().isdigit() for part in parts):
                ipv4_bits = int(parts[0])
                ipv6_bits = int(parts[1]) if len(parts) == 2 else 128
                if 0 <= ipv4_bits <= 32 and 0 <= ipv6_bits <= 128:
                    return ipv4_bits, ipv6_bits
        raise ConfigError(
            "per_source_net_block_size must be IPv4 bits (0-32), optionally ':' and IPv6 "
            f"bits (0-128), as in sshd (e.g. '24:64'), not {value!r}"
        )

    def exempt_networks(self) -> tuple[str, ...]:
        """``per_source_penalty_exempt_list`` as a tuple of CIDR blocks, each checked."""
        value = self.per_source_penalty_exempt_list
        entries = value.split(",") if isinstance(value, str) else value
        if not isinstance(entries, list | tuple) or not all(isinstance(e, str) for e in entries):
            raise ConfigError(
                "per_source_penalty_exempt_list must be addresses or CIDR blocks, "
                f"comma-separated or a list, not {value!r}"
            )
        networks = tuple(entry.strip() for entry in entries if entry.strip())
        if networks:
            import ipaddress  # (only when a list is given: it costs 0.2 MB of import)

            for network in networks:
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"per_source_penalty_exempt_list: {network!r} is not an address "
                        "or CIDR block such as '192.0.2.0/24' or '2001:db8::/32'"
                    ) from None
        return networks

    def startup_rule(self) -> tuple[int, int, int]:
        """``max_startups`` as (start, rate in %, full); a number N is (N, 100, N)."""
        value = self.max_startups
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value, 100, value
        if isinstance(value, str):
            parts = value.split(":")
            if len(parts) == 1 and parts[0].isdigit():
                return Limits(max_startups=int(parts[0])).startup_rule()
            if len(parts) == 3 and all(part.isdigit() for part in parts):
                start, rate, full = (int(part) for part in parts)
                if 1 <= start <= full and 1 <= rate <= 100:
                    return start, rate, full
        raise ConfigError(
            f"max_startups must be a whole number of at least 1, or 'start:rate:full' as "
            f"in sshd (e.g. '10:30:100', start <= full, rate 1-100), not {value!r}"
        )

    def checked(self) -> Limits:
        """These limits, if each is valid; else :class:`ConfigError` naming the option."""
        self.startup_rule()
        self.net_block_sizes()
        self.exempt_networks()
        for name in (
            "max_auth_tries",
            "per_source_max_startups",
            "max_sessions",
            "max_connections",
            "max_connections_per_key",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
        for name in ("idle_timeout", "session_timeout", "unused_connection_timeout"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or value <= 0
            ):
                raise ConfigError(f"{name} must be a positive number of seconds or None: {value!r}")
        grace = self.login_grace_time
        if not isinstance(grace, int | float) or isinstance(grace, bool) or grace <= 0:
            raise ConfigError(f"login_grace_time must be a positive number of seconds: {grace!r}")
        return self


class Config(NamedTuple):
    """The validated options of one manhole.

    Build it with :meth:`Config.build`, which turns what ``install()`` accepts (strings,
    tuples, ``None`` for defaults) into checked values.
    """

    port: int
    bind_address: str
    listen_tcp: bool  # false when only a socket_path was asked for
    socket_path: Path | None
    authorized_keys: tuple[KeySource, ...]  # files and callables, in order
    host_key_path: Path
    host_key_is_default: bool
    locals: Mapping[str, Any]
    loop: asyncio.AbstractEventLoop | None = None
    daemon: bool = True
    log_level: int | None = None
    audit_file: Path | None = None
    limits: Limits = Limits()
    activate_on: int | None = None  # a signal number: listen only once it arrives
    oneshot: bool = False  # stop after the first session ends
    post_quantum_only: bool = False  # ML-KEM key exchange only (OpenSSH >= 9.9 clients)
    revoked_keys_path: Path | None = None  # keys refused even if authorized (sshd's RevokedKeys)
    end_sessions_on_key_removal: bool = False  # a key leaving authorized_keys ends its sessions
    on_fork: str = "stop"  # in a forked child: "stop" (nothing) or "restart" (a manhole of its own)
    socket_path_template: str | None = None  # socket_path as given, before {pid}
    allow_remote: bool = False  # a non-loopback bind_address was asked for explicitly
    session_recordings: Path | None = None  # a folder: record terminal sessions (asciicast)
    given_through: str = "install()"  # install(), the command line or the environment
    # How long a breakpoint waits for an engineer before the thread goes on; also how long
    # a location stays quiet after a breakpoint there timed out or was let go.
    breakpoint_timeout: float = 300.0

    @property
    def exposed(self) -> bool:
        """Listening where other machines can reach it."""
        return (
            self.listen_tcp
            and self.bind_address != "localhost"
            and not _is_loopback(self.bind_address)
        )

    def for_this_process(self) -> Config:
        """The same options in a forked child: ``{pid}`` in socket_path is the child's."""
        return self._replace(socket_path=_socket_path(self.socket_path_template))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Config:
        """The configuration :func:`manhole_ssh.install` gets with these keyword arguments
        (the fields of :class:`Limits` among them go into ``limits``). :raises ConfigError:"""
        limits = {name: options[name] for name in Limits._fields if name in options}
        exempt = limits.get("per_source_penalty_exempt_list")
        if exempt is not None and not isinstance(exempt, str):
            limits["per_source_penalty_exempt_list"] = tuple(exempt)
        rest = {name: value for name, value in options.items() if name not in Limits._fields}
        return cls.build(limits=Limits(**limits), **rest)

    @classmethod
    def build(
        cls,
        *,
        port: int | None = None,
        bind_address: str | tuple[str, int] | None = None,
        authorized_keys: AuthorizedKeysOption = None,
        host_key: str | os.PathLike[str] | None = None,
        locals: Mapping[str, Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        daemon: bool = True,
        log_level: int | str | None = None,
        audit_file: str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
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
    ) -> Config:
        listen_tcp = socket_path is None or port is not None or bind_address is not None
        address, port = _split_address(bind_address, port)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(
                f"port must be an integer from 0 to 65535 (0 = any free port), not {port!r}"
            )
        if not allow_remote:
            _check_loopback(address)
        elif address != "localhost":
            _is_loopback(address)  # still an IP address (raises otherwise)
        if locals is not None and not isinstance(locals, Mapping):
            raise ConfigError(f"locals must be a dict of names, not {type(locals).__name__}")
        asyncio_module = sys.modules.get("asyncio")  # a loop implies asyncio is imported
        if loop is not None and (
            asyncio_module is None or not isinstance(loop, asyncio_module.AbstractEventLoop)
        ):
            raise ConfigError(f"loop must be an asyncio event loop, not {type(loop).__name__}")
        host_key_path = (
            Path(os.path.expanduser(os.fspath(host_key)))
            if host_key is not None
            else default_host_key_path()
        )
        return cls(
            port=port,
            bind_address=address,
            listen_tcp=listen_tcp,
            socket_path=_socket_path(socket_path),
            authorized_keys=_key_sources(authorized_keys),
            host_key_path=host_key_path,
            host_key_is_default=host_key is None,
            locals=dict(locals or {}),
            loop=loop,
            daemon=bool(daemon),
            log_level=_log_level(log_level),
            audit_file=Path(os.path.expanduser(os.fspath(audit_file))) if audit_file else None,
            limits=(limits or Limits()).checked(),
            activate_on=_signal_number(activate_on),
            oneshot=bool(oneshot),
            post_quantum_only=bool(post_quantum_only),
            on_fork=_on_fork(on_fork),
            revoked_keys_path=(
                Path(os.path.expanduser(os.fspath(revoked_keys))) if revoked_keys else None
            ),
            end_sessions_on_key_removal=bool(end_sessions_on_key_removal),
            socket_path_template=os.fspath(socket_path) if socket_path is not None else None,
            allow_remote=bool(allow_remote),
            session_recordings=(
                Path(os.path.expanduser(os.fspath(session_recordings))).absolute()
                if session_recordings
                else None
            ),
            given_through=_option_origins.get()[0],
            breakpoint_timeout=_positive_seconds("breakpoint_timeout", breakpoint_timeout),
        )


def _positive_seconds(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _key_sources(option: AuthorizedKeysOption) -> tuple[KeySource, ...]:
    """A path, several, or callables returning authorized_keys lines, as a tuple."""
    if option is None:
        return (_default_authorized_keys_path(),)
    items = [option] if isinstance(option, str | os.PathLike) or callable(option) else option
    sources: list[KeySource] = []
    try:
        for item in items:
            if callable(item):
                sources.append(item)
            elif isinstance(item, str | os.PathLike):
                sources.append(Path(os.path.expanduser(os.fspath(item))))
            else:
                raise TypeError
    except TypeError:
        raise ConfigError(
            "authorized_keys must be a path, a list of paths, or a callable returning "
            f"authorized_keys lines, not {option!r}"
        ) from None
    if not sources:
        raise ConfigError("authorized_keys names no source: nobody could log in")
    return tuple(sources)


def _split_address(bind_address: str | tuple[str, int] | None, port: int | None) -> tuple[str, int]:
    if isinstance(bind_address, tuple):
        if len(bind_address) != 2:
            raise ConfigError(
                f"bind_address must be 'HOST' or ('HOST', PORT), not {bind_address!r}"
            )
        host, tuple_port = bind_address
        if port is not None and port != tuple_port:
            raise ConfigError(
                f"port={port} disagrees with bind_address={bind_address!r}: give the port once"
            )
        return str(host), tuple_port
    return (bind_address or DEFAULT_BIND_ADDRESS), (DEFAULT_PORT if port is None else port)


def _is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1 (or ::ffff:127.x). ``ipaddress`` would do, at 0.2 MB of import."""
    import socket

    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            packed = socket.inet_pton(family, address)
        except OSError:
            continue
        if family == socket.AF_INET:
            return packed[0] == 127
        if packed == bytes(15) + b"\x01":
            return True
        return packed[:12] == bytes(10) + b"\xff\xff" and packed[12] == 127
    raise ConfigError(
        f"bind_address {address!r} is not an IP address: give a loopback address "
        "such as '127.0.0.1' or '::1'"
    )


def _check_loopback(address: str) -> None:
    """Refuse an address that is not loopback unless allow_remote=True says it is meant."""
    if address == "localhost":
        return
    if not _is_loopback(address):
        raise ConfigError(
            f"bind_address {address!r} is not a loopback address. Whoever gets in runs any "
            "code in this process, so manhole-ssh listens on loopback (127.0.0.1, ::1) "
            "unless allow_remote=True is given too; better, reach it from elsewhere with "
            "`ssh -J` through the machine's own sshd."
        )


def _on_fork(on_fork: str) -> str:
    if on_fork not in ("stop", "restart"):
        raise ConfigError(f"on_fork must be 'stop' or 'restart', not {on_fork!r}")
    return on_fork


def _socket_path(socket_path: str | os.PathLike[str] | None) -> Path | None:
    """The path, with ``{pid}`` replaced, so that each worker of a pre-fork server has one."""
    if socket_path is None:
        return None
    text = os.path.expanduser(os.fspath(socket_path)).replace("{pid}", str(os.getpid()))
    if len(text.encode()) > 107:
        raise ConfigError(f"socket_path {text} is longer than a Unix socket path may be (107)")
    return Path(text).absolute()


def _signal_number(activate_on: int | str | None) -> int | None:
    """``signal.SIGUSR1``, ``10``, ``"USR1"`` or ``"SIGUSR1"`` -> the signal's number."""
    if activate_on is None:
        return None
    import signal

    if isinstance(activate_on, str):
        name = activate_on.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        number = getattr(signal, name, None)
        if not isinstance(number, signal.Signals):
            raise ConfigError(f"activate_on {activate_on!r} is not a signal name such as 'USR1'")
        return int(number)
    try:
        return int(signal.Signals(activate_on))
    except ValueError:
        raise ConfigError(f"activate_on {activate_on!r} is not a signal number") from None


def _log_level(level: int | str | None) -> int | None:
    if level is None or isinstance(level, int):
        return level
    resolved = logging.getLevelName(level.upper())
    if not isinstance(resolved, int):
        raise ConfigError(f"log_level {level!r} is not a logging level (DEBUG, INFO, WARNING …)")
    return resolved


# Every option that can be set from the environment, and how its text is read (declared
# in options.py). `locals` and `loop` are objects, which no variable can hold.
_ENVIRONMENT_KINDS: dict[str, str] = {
    option.name: option.environment for option in OPTIONS if option.environment is not None
}
ENVIRONMENT_PREFIX = "MANHOLE_SSH_"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def environment_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``MANHOLE_SSH`` asks for a manhole (``1``, ``true``, ``yes``, ``on``)."""
    value = (os.environ if environ is None else environ).get("MANHOLE_SSH", "")
    return _read_bool("MANHOLE_SSH", value)


def environment_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``install()`` options given as ``MANHOLE_SSH_<OPTION>`` variables.

    ``MANHOLE_SSH_PORT=0`` is ``port=0``; an unknown ``MANHOLE_SSH_*`` name (a typo would
    otherwise be ignored silently) or a value that does not parse is a :class:`ConfigError`.
    """
    environ = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    for variable, value in environ.items():
        if not variable.startswith(ENVIRONMENT_PREFIX):
            continue
        name = variable[len(ENVIRONMENT_PREFIX) :].lower()
        kind = _ENVIRONMENT_KINDS.get(name)
        if kind is None:
            raise ConfigError(f"{variable} is not an option of manhole-ssh; {_suggest(variable)}")
        options[name] = _read_variable(variable, value, kind)
    return options


def _suggest(variable: str) -> str:
    """ "did you mean MANHOLE_SSH_PORT?" for a misspelt variable, else the known ones."""
    from difflib import get_close_matches

    close = get_close_matches(variable, environment_variables(), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return "known: " + ", ".join(environment_variables())


def environment_variables() -> list[str]:
    """Every ``MANHOLE_SSH_*`` variable, for documentation and ``--help``."""
    return [ENVIRONMENT_PREFIX + name.upper() for name in _ENVIRONMENT_KINDS]


def _read_bool(variable: str, value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{variable}={value!r}: use 1 or 0 (true/false, yes/no, on/off)")


def _read_variable(variable: str, value: str, kind: str) -> object:
    if kind == "bool":
        return _read_bool(variable, value)
    if kind == "text":
        return value
    if kind == "paths":  # several files, separated as in $PATH
        paths = [part for part in value.split(os.pathsep) if part]
        return paths[0] if len(paths) == 1 else paths
    if kind == "seconds or none" and value.strip().lower() in ("", "none"):
        return None
    try:
        return int(value) if kind == "int" else float(value)
    except ValueError:
        expected = "a whole number" if kind == "int" else "a number of seconds"
        raise ConfigError(f"{variable}={value!r} is not {expected}") from None


# Where the options of the install() under way came from, so that an error tells each user
# the spelling they used: `port=0` to a caller, `--port 0` on the command line,
# `MANHOLE_SSH_PORT=0` in the environment.
INSTALL_CALL, COMMAND_LINE, ENVIRONMENT = "install()", "command line", "environment"
_COMMAND_LINE_FLAGS = {option.name: option.flag for option in OPTIONS if option.flag is not None}
_option_origins: ContextVar[tuple[str, Mapping[str, str]]] = ContextVar(
    "manhole_ssh_option_origins", default=(INSTALL_CALL, {})
)


@contextmanager
def options_given_through(front: str, origins: Mapping[str, str]) -> Iterator[None]:
    """Within this block, errors spell options as given through ``front`` (the command line
    or the environment), or as ``origins`` says for each option given."""
    token = _option_origins.set((front, dict(origins)))
    try:
        yield
    finally:
        _option_origins.reset(token)


def spelled(name: str, value: str) -> str:
    """How the user would set option ``name`` to ``value``, the way they gave options:
    ``port=0``, ``--port 0`` or ``MANHOLE_SSH_PORT=0``."""
    front, origins = _option_origins.get()
    origin = origins.get(name, front)
    variable = f"{ENVIRONMENT_PREFIX}{name.upper()}={value}"
    if origin == COMMAND_LINE:
        flag = _COMMAND_LINE_FLAGS.get(name)
        return f"{flag} {value}" if flag is not None else variable
    if origin == ENVIRONMENT:
        return variable
    return f"{name}={value}"
