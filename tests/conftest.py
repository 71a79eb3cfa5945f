"""Fixtures: keys, a host process with a manhole, and the real OpenSSH client in a PTY."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pexpect
import pyte
import pytest
from support.ssh import AnsweringScreen, ssh_argv

from manhole_ssh.access.host_key import write_host_key
from manhole_ssh.discovery import Record, read_records

HOST_APP = Path(__file__).with_name("host_app.py")
# The recipes of the documentation: apps the tests start as the pages show them.
RECIPES = Path(__file__).resolve().parent.parent / "docs" / "recipes"

if shutil.which("ssh") is None:
    pytest.exit("the OpenSSH client (ssh) is needed: apt-get install openssh-client", returncode=3)


def write_key_pair(path: Path, comment: str) -> asyncssh.SSHKey:
    """A client key pair as ssh-keygen would write it (private key 0600)."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as private_file:
        private_file.write(key.export_private_key("openssh"))
    path.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))
    return key


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private $XDG_RUNTIME_DIR per test, inherited by the processes it starts: the
    discovery records of parallel tests never meet."""
    folder = tmp_path / "xdg-runtime"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    return folder


@dataclass
class Keys:
    folder: Path
    client_key: Path
    other_key: Path  # a valid key that is not authorized
    authorized_keys: Path
    host_key: Path


@pytest.fixture
def default_keys(keys: Keys, tmp_path: Path) -> dict[str, str]:
    """HOME and XDG_STATE_HOME for a program that uses the default key files, as the recipes
    do: ~/.ssh/authorized_keys holds the client key, the default host key is keys.host_key."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    shutil.copy(keys.authorized_keys, home / ".ssh" / "authorized_keys")
    state = home / ".local" / "state" / "manhole-ssh"
    state.mkdir(parents=True, mode=0o700)
    shutil.copy(keys.host_key, state / keys.host_key.name)
    return {"HOME": str(home), "XDG_STATE_HOME": str(home / ".local" / "state")}


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    client_key = folder / "id_ed25519"
    other_key = folder / "other_ed25519"
    write_key_pair(client_key, "alice@test")
    write_key_pair(other_key, "mallory@test")
    authorized_keys = folder / "authorized_keys"
    authorized_keys.write_bytes(client_key.with_suffix(".pub").read_bytes())
    authorized_keys.chmod(0o600)
    host_key = folder / "ssh_host_ed25519_key"
    write_host_key(host_key)  # what `manhole-ssh keygen` does (its own test runs the command)
    return Keys(folder, client_key, other_key, authorized_keys, host_key)


def socket_of_user(uid: int, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket made by user ``uid`` (the kernel records who made a socket, as the
    server's per-user penalties on loopback read it), for a test to connect as "another
    local user" without any file of the test being readable by that user. Needs root:
    a forked child drops to ``uid``, makes the socket and passes it back."""
    parent_end, child_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: nothing but the socket, then out
        try:
            os.setuid(uid)
            made = socket.socket(family, socket.SOCK_STREAM)
            socket.send_fds(child_end, [b"s"], [made.fileno()])
        finally:
            os._exit(0)
    child_end.close()
    with parent_end:
        _, descriptors, _, _ = socket.recv_fds(parent_end, 1, 1)
    os.waitpid(pid, 0)
    return socket.socket(fileno=descriptors[0])


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class Host:
    """A host process running tests/host_app.py, with its stdout collected."""

    process: subprocess.Popen[bytes]
    port: int = 0
    output: bytearray = field(default_factory=bytearray)

    def read_output(self, timeout: float = 0.0) -> str:
        """Collect what the host printed so far (waiting up to ``timeout`` for more)."""
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([descriptor], [], [], remaining)
            if not readable:
                break
            chunk = os.read(descriptor, 65536)
            if not chunk:
                break
            self.output.extend(chunk)
            if timeout == 0.0:
                continue
        return self.output.decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def start_host(keys: Keys, *options: str, program: Path = HOST_APP) -> Host:
    """Start ``program`` (tests/host_app.py by default) with the keys and ``options``, and
    wait for the ``PORT n`` it prints."""
    process = subprocess.Popen(
        [sys.executable, str(program), str(keys.authorized_keys), str(keys.host_key), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    host = Host(process)
    deadline = time.monotonic() + 30
    # (Matched anywhere: a --chatty host thread may print between "PORT n" and its newline.)
    while not (found := re.search(r"PORT (\d+)\D", host.read_output(0.1))):
        if time.monotonic() > deadline or not host.alive():
            process.kill()
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"host did not start: {host.output.decode()} {stderr}")
    host.port = int(found.group(1))
    return host


@pytest.fixture
def host(keys: Keys) -> Iterator[Host]:
    started = start_host(keys)
    yield started
    stop_host(started)


@pytest.fixture
def asyncio_host(keys: Keys) -> Iterator[Host]:
    started = start_host(keys, "--asyncio")
    yield started
    stop_host(started)


@pytest.fixture
def audited_host(keys: Keys, tmp_path: Path) -> Iterator[tuple[Host, Path]]:
    """A host whose manhole also writes its audit trail to a file (read with read_events)."""
    audit_file = tmp_path / "audit.jsonl"
    started = start_host(keys, "--set", f"audit_file={audit_file}")
    yield started, audit_file
    stop_host(started)


def read_events(audit_file: Path) -> list[dict[str, object]]:
    """The audit trail's events so far, one JSON object a line."""
    return [json.loads(line) for line in audit_file.read_text().splitlines()]


def stop_host(host: Host) -> None:
    host.process.kill()
    host.process.wait(timeout=10)
    for stream in (host.process.stdout, host.process.stderr):
        if stream is not None:
            stream.close()


def run_ssh(
    port: int, key: Path | None, *extra: str, stdin: bytes | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        ssh_argv(port, key, *extra),
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        completed.args,
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )


def asyncssh_client(port: int, **options: Any) -> Any:
    """asyncssh's client to the manhole on ``port``, isolated from the user's keys, agent,
    config and known hosts; ``options`` (client_keys=, password=, local_addr=…) as
    ``asyncssh.connect`` takes them. Use with ``async with``."""
    return asyncssh.connect(
        "127.0.0.1", port, known_hosts=None, agent_path=None, config=None, **options
    )


def exec_code(
    port: int, key: Path | None, code: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """``ssh -p PORT 127.0.0.1 CODE``: run code in the host, the exec way."""
    return run_ssh(port, key, "127.0.0.1", code, stdin=stdin)


class Terminal:
    """``ssh`` in a real PTY, its output rendered by a terminal emulator.

    :param answer_cpr: answer ``ESC[6n`` like a real terminal (``False``: a client that
        never answers).
    """

    def __init__(
        self, argv: list[str], *, columns: int = 100, rows: int = 30, answer_cpr: bool = True
    ) -> None:
        self.child = pexpect.spawn(
            argv[0], argv[1:], encoding="utf-8", codec_errors="replace", dimensions=(rows, columns)
        )
        self.child.delaybeforesend = None
        self.screen = AnsweringScreen(columns, rows, self.child.send if answer_cpr else None)
        self.stream = pyte.Stream(self.screen)
        self.transcript = ""

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def pump(self, wait: float = 0.05) -> bool:
        """Read what is available; false once the client has exited."""
        try:
            data = self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.transcript += data
        self.stream.feed(data)
        return True

    def wait_screen(self, predicate: Callable[[str], bool], what: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            alive = self.pump()
            text = self.text()
            if predicate(text):
                return text
            if not alive or time.monotonic() > deadline:
                reason = "the client exited" if not alive else f"timed out after {timeout} s"
                raise AssertionError(f"{reason} waiting for {what}; screen:\n{text}")

    def expect(self, fragment: str, timeout: float = 15) -> str:
        return self.wait_screen(lambda text: fragment in text, repr(fragment), timeout)

    def wait_prompt(self, timeout: float = 15) -> str:
        """Wait until the cursor sits on an empty ``>>>`` prompt."""
        return self.wait_screen(
            lambda text: self.screen.display[self.screen.cursor.y].rstrip() == ">>>",
            "an empty prompt",
            timeout,
        )

    def evaluate(self, statement: str, expected: str, timeout: float = 15) -> str:
        """Type a statement, wait for ``expected`` on screen, then for the next prompt."""
        self.child.send(statement + "\r")
        self.expect(expected, timeout)
        return self.wait_prompt(timeout)

    def send(self, data: str) -> None:
        self.child.send(data)

    def wait_cooked(self, timeout: float = 15) -> None:
        """Wait until ``ssh`` has put its terminal back in canonical mode (``Ctrl-D`` is EOF).

        ``ssh`` leaves raw mode when the server refuses a PTY, a moment after it prints why.
        """

        def cooked() -> bool:
            self.pump(0.01)
            return bool(termios.tcgetattr(self.child.child_fd)[3] & termios.ICANON)

        wait_for(cooked, timeout, "ssh to leave raw mode")

    def resize(self, columns: int, rows: int) -> None:
        self.screen.resize(rows, columns)
        self.child.setwinsize(rows, columns)

    def wait_exit(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while self.pump():
            if time.monotonic() > deadline:
                raise AssertionError(f"ssh did not exit; screen:\n{self.text()}")
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def close(self) -> None:
        self.child.close(force=True)


@pytest.fixture
def terminals() -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(argv: list[str], **options: object) -> Terminal:
        terminal = Terminal(argv, **options)  # type: ignore[arg-type]
        opened.append(terminal)
        return terminal

    yield open_terminal
    for terminal in opened:
        terminal.close()


Launch = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def launch(keys: Keys) -> Iterator[Launch]:
    """Start a program in a session of its own, with MANHOLE_SSH_* set from ``env``;
    the whole process group is killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(
        argv: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[str]:
        environment = {
            **os.environ,
            "MANHOLE_SSH_PORT": "0",
            "MANHOLE_SSH_AUTHORIZED_KEYS": str(keys.authorized_keys),
            "MANHOLE_SSH_HOST_KEY": str(keys.host_key),
            **env,
        }
        process = subprocess.Popen(
            argv,
            env=environment,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)


def records_of(
    pids: set[int] | None = None,
    count: int = 1,
    timeout: float = 20,
    exclude: set[int] | None = None,
) -> list[Record]:
    """Wait until ``count`` manholes are listed (of these ``pids``, if given); with
    ``exclude``, return the listed ones whose pid is not in it."""
    found: list[Record] = []

    def listed() -> bool:
        found[:] = [r for r in read_records() if pids is None or r.pid in pids]
        if exclude is not None and len(found) >= count:
            found[:] = [r for r in found if r.pid not in exclude]
            return bool(found)
        return len(found) >= count

    wait_for(listed, timeout, f"{count} discovery record(s)")
    return found
