"""stop(): listeners closed, every session ended with a message, the thread joined, in
bounded time, and the host process still running."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

from conftest import Keys, Terminal, asyncssh_client, ssh_argv, wait_for

import manhole_ssh

OpenTerminal = Callable[..., Terminal]

STOPPING = "manhole-ssh is stopping: this session ends (the process keeps running)."

HOST = """
import sys, threading, time, manhole_ssh
manhole = manhole_ssh.install(port=0, authorized_keys={keys!r}, host_key={host_key!r})
print("PORT", manhole.port, flush=True)
sys.stdin.readline()  # the test's sessions are open
started = time.monotonic()
manhole.stop(timeout=2)
took = time.monotonic() - started
names = sorted(t.name for t in threading.enumerate() if t.name.startswith("manhole-ssh"))
print("stopped", round(took, 2), manhole.running, names, flush=True)
sys.stdin.readline()
print("still running", flush=True)
"""


def read_line(stream: IO[bytes] | None, timeout: float) -> str:
    """One line from a child's pipe (read byte by byte: nothing read ahead is lost), or
    fail after ``timeout`` seconds."""
    assert stream is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
            raise AssertionError(f"no whole line within {timeout} s: {line!r}")
        byte = os.read(stream.fileno(), 1)
        if not byte:
            raise AssertionError(f"the pipe closed: {line!r}")
        line += byte
    return line.decode()


def test_stop_ends_sessions_with_a_message_and_returns_in_bounded_time(
    keys: Keys, terminals: OpenTerminal
) -> None:
    code = HOST.format(keys=str(keys.authorized_keys), host_key=str(keys.host_key))
    host = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    sleeper: subprocess.Popen[bytes] | None = None
    assert host.stdin is not None
    try:
        port = int(read_line(host.stdout, 30).split()[1])
        terminal = terminals(ssh_argv(port, keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_prompt()
        terminal.evaluate("6 * 7", "42")
        sleeper = subprocess.Popen(  # an exec session blocked in C (time.sleep)
            ssh_argv(
                port,
                keys.client_key,
                "127.0.0.1",
                "import time; print('sleeping', flush=True); time.sleep(30)",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert read_line(sleeper.stdout, 15) == "sleeping\n"

        host.stdin.write(b"stop\n")
        host.stdin.flush()
        terminal.expect(STOPPING)
        assert terminal.wait_exit() == 255  # ended by the server
        _, sleeper_stderr = sleeper.communicate(timeout=15)
        assert STOPPING in sleeper_stderr.decode()
        assert sleeper.returncode == 255

        _, took, running, names = read_line(host.stdout, 15).split(" ", 3)
        assert float(took) < 2 + 1.5  # the timeout given, and a little more
        assert running == "False"
        # The server thread and its loop's pool are gone; only the statement blocked in
        # C keeps its worker thread, until time.sleep() returns.
        (left,) = ast.literal_eval(names)
        assert left.startswith("manhole-ssh worker "), names
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # no listener

        host.stdin.write(b"go on\n")
        host.stdin.flush()
        assert read_line(host.stdout, 15) == "still running\n"
        assert host.poll() is None
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.communicate()
        host.kill()
        host.wait()
        for stream in (host.stdin, host.stdout):
            if stream is not None:
                stream.close()


class Messages(logging.Handler):
    """Collects what is logged to the logger it is added to."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def event_kinds(self) -> list[str]:
        """The kinds of the audit trail's events (its messages are JSON)."""
        return [json.loads(message)["event"] for message in self.messages]


def test_stop_while_a_finished_session_waits_for_its_client(keys: Keys) -> None:
    """A session that has ended (exit status and close sent) but whose client has not
    answered yet is still on the server's books when stop() comes: telling it that the
    manhole stops must not break the stop for the other sessions."""
    audit = logging.getLogger("manhole_ssh.audit")
    events = Messages()
    audit.addHandler(events)
    previous_level = audit.level
    audit.setLevel(logging.INFO)
    descriptors = set(os.listdir("/proc/self/fd"))
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )

    async def scenario() -> str:
        async with (
            asyncssh_client(manhole.port, client_keys=[str(keys.client_key)]) as silent,
            asyncssh_client(manhole.port, client_keys=[str(keys.client_key)]) as other,
        ):
            waiting = await other.create_process()  # a script session, waiting for EOF
            finished = await silent.create_process()
            silent._transport.pause_reading()  # this client reads nothing from now on
            finished.stdin.write_eof()  # its (empty) script runs, and its session ends
            await asyncio.to_thread(
                wait_for,
                lambda: events.event_kinds().count("session_end") == 1,
                10,
                "the silent client's session to end",
            )
            await asyncio.to_thread(manhole.stop)
            await asyncio.wait_for(waiting.wait_closed(), 10)
            return str(await waiting.stderr.read())

    try:
        told = asyncio.run(scenario())
    finally:
        manhole_ssh.uninstall()
        audit.removeHandler(events)
        audit.setLevel(previous_level)
    assert STOPPING in told
    assert manhole.error is None
    assert set(os.listdir("/proc/self/fd")) == descriptors  # every connection closed


def test_a_channel_closed_by_its_client_but_not_yet_cleaned_up(keys: Keys) -> None:
    """The client has closed the channel, and the server has answered the close, but has
    not let go of the session yet (unread input is still buffered: reading was paused).
    The channel takes no more output: a statement's late print, and stop() telling the
    session that the manhole stops, must drop their text, not raise into the server."""
    gate, printed, hold = threading.Event(), threading.Event(), threading.Event()
    manhole = manhole_ssh.install(
        port=0,
        authorized_keys=keys.authorized_keys,
        host_key=keys.host_key,
        locals={"gate": gate, "printed": printed, "hold": hold},
    )
    loop_errors = Messages()
    logging.getLogger("asyncio").addHandler(loop_errors)

    async def scenario() -> None:
        async with asyncssh_client(manhole.port, client_keys=[str(keys.client_key)]) as client:
            process = await client.create_process(
                "gate.wait(10); print('late', flush=True); printed.set(); hold.wait(10)"
            )
            process.stdin.write("x" * (1024 * 1024))  # never read: the server pauses
            await process.stdin.drain()
            process.channel.close()
            await asyncio.wait_for(process.channel.wait_closed(), 10)
            gate.set()
            await asyncio.to_thread(wait_for, printed.is_set, 10, "the late print")
            await asyncio.to_thread(manhole.stop, 1.0)

    try:
        asyncio.run(scenario())  # stop() while the statement still runs
    finally:
        hold.set()
        manhole_ssh.uninstall()
        logging.getLogger("asyncio").removeHandler(loop_errors)
    assert manhole.error is None
    assert loop_errors.messages == []
