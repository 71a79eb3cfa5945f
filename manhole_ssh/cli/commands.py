"""The ``manhole-ssh`` command: ``demo``, ``run``, ``list``, ``connect``, ``keygen``,
``host-key``, ``proxy``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import runpy
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import (
    COMMAND_LINE,
    DEFAULT_BIND_ADDRESS,
    DEFAULT_PORT,
    ENVIRONMENT,
    ConfigError,
    environment_options,
    environment_variables,
    options_given_through,
)
from .children import pass_to_children

__all__ = ["main"]


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help=f"TCP port (0: any free one; {DEFAULT_PORT})")
    parser.add_argument("--bind", help=f"loopback address to listen on ({DEFAULT_BIND_ADDRESS})")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        default=None,
        help="allow a --bind address that other machines can reach",
    )
    parser.add_argument(
        "--authorized-keys", help="authorized_keys file (default: ~/.ssh/authorized_keys)"
    )
    parser.add_argument("--host-key", help="host private key (default: made on first use)")
    parser.add_argument("--socket-path", help="also listen on this Unix socket ({pid} allowed)")
    parser.add_argument(
        "--activate-on", metavar="SIGNAL", help="listen only once this signal comes (USR1)"
    )


def _install_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The MANHOLE_SSH_* variables, overridden by the options given on the command line;
    and where each came from, so that errors spell them as the user gave them."""
    options = environment_options()
    origins = dict.fromkeys(options, ENVIRONMENT)
    given = {
        "port": args.port,
        "bind_address": args.bind,
        "authorized_keys": args.authorized_keys,
        "host_key": args.host_key,
        "socket_path": args.socket_path,
        "allow_remote": args.allow_remote,
        "activate_on": args.activate_on,
    }
    for name, value in given.items():
        if value is not None:
            options[name] = value
            origins[name] = COMMAND_LINE
    return options, origins


class DemoService:
    """A small live service to explore: an asyncio task and a thread updating shared state."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {"ticks": 0, "jobs_done": 0}
        self.cache: dict[str, str] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    async def ticker(self) -> None:
        while True:
            await asyncio.sleep(1)
            self.counters["ticks"] += 1

    def worker(self) -> None:
        job = 0
        while not self.stopping.wait(0.5):
            job += 1
            with self.lock:
                self.cache[f"job-{job % 10}"] = f"result of job {job}"
                self.counters["jobs_done"] += 1


async def _demo(args: argparse.Namespace) -> int:
    import manhole_ssh

    service = DemoService()
    worker = threading.Thread(target=service.worker, name="demo-worker", daemon=True)
    worker.start()
    ticker = asyncio.get_running_loop().create_task(service.ticker(), name="demo-ticker")
    options, origins = _install_options(args)
    with options_given_through(COMMAND_LINE, origins):
        manhole = manhole_ssh.install(
            locals={"service": service, "counters": service.counters, "cache": service.cache},
            **options,
        )
    fingerprint = manhole.host_key_fingerprint or "made at the first connection"
    print(
        f"demo service running (pid {os.getpid()}); the manhole listens on {manhole.address} "
        f"port {manhole.port}, host key {fingerprint}.\n"
        f"Get in with:\n\n    {_ssh_command(args, manhole.port, manhole.address)}\n\n"
        "Try: counters, cache, service, threads(), tasks(), manhole_help(), "
        "await asyncio.sleep(1). Ctrl-C here stops.",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        ticker.cancel()
        service.stopping.set()
        manhole_ssh.uninstall()
    return 0


def _ssh_command(args: argparse.Namespace, port: int, address: str) -> str:
    identity = ""
    authorized_keys = _install_options(args)[0].get("authorized_keys")
    if authorized_keys:
        client_key = Path(authorized_keys).with_name("id_ed25519")
        if client_key.exists():
            identity = f"-i {client_key} "
    return f"ssh {identity}-p {port} {address}"


def _run(args: argparse.Namespace) -> int:
    import manhole_ssh

    if not args.target:
        raise ConfigError("manhole-ssh run needs a script (or -m module) to run")
    target, *program_args = args.target
    # The program's own arguments first: they tell whether it is a reloader's parent.
    sys.argv = [target, *program_args]
    options, origins = _install_options(args)
    pass_to_children({name: options[name] for name in origins if origins[name] == COMMAND_LINE})
    if manhole_ssh.installed() is None:  # (a reloader's child has one already)
        with options_given_through(COMMAND_LINE, origins):
            manhole_ssh.install(**options)
    if args.module:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.path.insert(0, str(Path(target).resolve().parent))
        runpy.run_path(target, run_name="__main__")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from ..access.host_key import write_host_key

    path = Path(args.path)
    try:
        fingerprint = write_host_key(path, with_public_key=True)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: remove it first to make a new key") from None
    print(f"wrote {path} (mode 0600) and {path}.pub: ED25519 {fingerprint}")
    return 0


def _host_key(args: argparse.Namespace) -> int:
    """Print the host key's fingerprint and public key, making the default key if it
    is missing: what a client will be shown is then known before the first connection
    (a manhole makes its default key only when someone first connects)."""
    from ..access.host_key import fingerprint_of, host_public_key, public_key_line, write_host_key
    from ..config import default_host_key_path

    path = Path(args.path) if args.path else default_host_key_path()
    if not path.exists():
        if args.path:
            raise ConfigError(f"host key {path} does not exist: make it with `manhole-ssh keygen`")
        try:
            write_host_key(path)
            print(f"made {path} (mode 0600)", file=sys.stderr)
        except FileExistsError:
            pass  # a manhole made it meanwhile: show that one
    public_key = host_public_key(path)
    if public_key is None:
        raise ConfigError(f"host key {path} is not an OpenSSH private key")
    print(f"ED25519 {fingerprint_of(public_key)} {path}")
    print(public_key_line(public_key))  # for known_hosts: [127.0.0.1]:PORT ssh-ed25519 AAAA…
    return 0


def _proxy(args: argparse.Namespace) -> int:
    """Relay standard input and output to a manhole's Unix socket: ssh's ProxyCommand."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(args.path)
    except OSError as error:
        raise ConfigError(f"cannot connect to {args.path}: {error.strerror}") from None
    try:
        return _relay(connection)
    except (ConnectionResetError, BrokenPipeError) as error:
        raise ConfigError(f"connection to {args.path} lost: {error.strerror}") from None


def _relay(connection: socket.socket) -> int:
    import select

    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    sources = [stdin, connection.fileno()]
    with connection:
        while True:
            readable, _, _ = select.select(sources, [], [])
            if stdin in readable:
                data = os.read(stdin, 65536)
                if data:
                    connection.sendall(data)
                else:
                    connection.shutdown(socket.SHUT_WR)
                    sources.remove(stdin)
            if connection.fileno() in readable:
                data = connection.recv(65536)
                if not data:
                    return 0
                while data:
                    data = data[os.write(stdout, data) :]


def _connect(arguments: list[str]) -> int:
    from .connecting import connect

    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    pid = int(arguments[0]) if arguments[:1] and arguments[0].isdigit() else None
    return connect(pid, arguments[1:] if pid is not None else arguments)


def _version() -> str:
    from .. import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="manhole-ssh",
        description="An SSH server with a Python REPL inside a live process.",
        epilog="demo and run also read the options of install() from MANHOLE_SSH_* "
        "variables (the command line wins): " + ", ".join(environment_variables()),
    )
    parser.add_argument("--version", action="version", version=f"manhole-ssh {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a small live service with a manhole in it")
    _add_server_options(demo)
    run = commands.add_parser("run", help="run a program as __main__ with a manhole installed")
    _add_server_options(run)
    run.add_argument("-m", dest="module", action="store_true", help="run a module, as python -m")
    run.add_argument(
        "target", nargs=argparse.REMAINDER, help="script.py [args…] or -m module [args…]"
    )
    keygen = commands.add_parser(
        "keygen", help="write a new ed25519 key (PATH, 0600) and its public half (PATH.pub)"
    )
    keygen.add_argument("path")
    host_key = commands.add_parser(
        "host-key",
        help="print the host key's fingerprint (the default key, made now if missing)",
    )
    host_key.add_argument("path", nargs="?", help="a host key file (default: the default key)")
    proxy = commands.add_parser(
        "proxy", help="relay stdin/stdout to a manhole's Unix socket (ssh's ProxyCommand)"
    )
    proxy.add_argument("path")
    commands.add_parser("list", help="list this user's running manholes")
    connect = commands.add_parser(
        "connect",
        help="run ssh to a running manhole (the only one, or the one of process PID)",
        description="Run ssh to a running manhole, checking its host key from its record. "
        "Arguments after PID go to ssh after the destination: options, then a command "
        "(manhole-ssh connect 1234 -i ~/.ssh/ops_key 'len(cache)').",
    )
    connect.add_argument("arguments", nargs=argparse.REMAINDER, help="[PID] [ssh arguments…]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["connect"] and not {"-h", "--help"} & set(words[1:2]):
        # Everything after `connect` is ssh's, options included: argparse would claim them.
        try:
            return _connect(words[1:])
        except ConfigError as error:
            print(f"manhole-ssh: {error}", file=sys.stderr)
            return 2
    args = _parser().parse_args(words)
    try:
        if args.command == "demo":
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
            # The manhole's own log (logins, sessions, statements) is the demo's point;
            # asyncssh's INFO lines (every channel opened and closed) would drown it.
            logging.getLogger("asyncssh").setLevel(logging.WARNING)
            try:
                return asyncio.run(_demo(args))
            except KeyboardInterrupt:
                print("\ndemo stopped", file=sys.stderr)
                return 0
        if args.command == "run":
            return _run(args)
        if args.command == "proxy":
            return _proxy(args)
        if args.command == "list":
            from .connecting import list_manholes

            return list_manholes()
        if args.command == "connect":
            return _connect(args.arguments)
        if args.command == "host-key":
            return _host_key(args)
        return _keygen(args)
    except ConfigError as error:
        print(f"manhole-ssh: {error}", file=sys.stderr)
        return 2
