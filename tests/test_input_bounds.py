"""One session cannot stall the manhole: pastes, typeahead, terminal sizes, output to a
client that stops reading, and channel requests the manhole refuses (issue 9)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh.constants import MSG_CHANNEL_REQUEST
from asyncssh.packet import String, UInt32
from conftest import (
    Host,
    Keys,
    Terminal,
    asyncssh_client,
    exec_code,
    read_events,
    ssh_argv,
    wait_for,
)
from rawssh import Packet, send_raw
from test_adversarial import rss_kb

import manhole_ssh
from manhole_ssh.session.keyfeed import Paste, PasteLimit

OpenTerminal = Callable[..., Terminal]

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def paste(terminal: Terminal, text: str) -> None:
    """Paste as a terminal does (bracketed), in pieces, reading the screen in between so
    that neither side of the PTY fills up."""
    data = PASTE_START + text + PASTE_END
    for start in range(0, len(data), 16384):
        terminal.send(data[start : start + 16384])
        terminal.pump(0)


def answers(host: Host, keys: Keys) -> bool:
    """Another session logs in and runs a statement."""
    return exec_code(host.port, keys.client_key, "6 * 7").stdout == "42\n"


def test_a_big_paste_reaches_the_prompt_whole(
    host: Host, keys: Keys, terminals: OpenTerminal
) -> None:
    """600 kB pasted into the prompt arrive whole; the manhole's loop is never blocked (a
    blocking write into ptpython's pipe froze it for good from 64 kB), and another
    session gets in meanwhile. The terminal answers "where is the cursor?" between two
    pieces of the paste: its answers go to the prompt, not into the pasted text."""
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    paste(terminal, 'x = "' + "a" * 600_000 + '"')
    assert answers(host, keys)
    terminal.send("\r")
    terminal.wait_prompt(timeout=30)
    terminal.evaluate("len(x)", "600000", timeout=30)
    assert answers(host, keys) and host.alive()


def test_a_paste_over_the_limit_is_refused_with_a_message(
    host: Host, keys: Keys, terminals: OpenTerminal
) -> None:
    """2 MB pasted: refused whole, with a message in the session, nothing typed of it."""
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    paste(terminal, "y = 1  # " + "b" * 2_000_000)
    terminal.expect("refused (nothing of it was typed)", timeout=30)
    terminal.evaluate("'y' in globals()", "False")
    assert answers(host, keys) and host.alive()


def _window_change(server_channel: int, columns: int, rows: int) -> Packet:
    """SSH_MSG_CHANNEL_REQUEST "window-change", no reply wanted."""
    size = UInt32(columns) + UInt32(rows) + UInt32(0) + UInt32(0)
    return MSG_CHANNEL_REQUEST, UInt32(server_channel) + String(b"window-change") + b"\0" + size


async def _pty_session(port: int, keys: Keys, **options: Any) -> tuple[Any, Any, Any]:
    connection = await asyncssh_client(port, username="alice", client_keys=[keys.client_key])
    process = await connection.create_process(term_type="xterm", term_size=(80, 24), **options)
    return connection, process, process.channel


async def _read_until(process: Any, fragment: str, received: list[str], timeout: float) -> None:
    async def read() -> None:
        while fragment not in "".join(received):
            chunk = await process.stdout.read(65536)
            if not chunk:
                raise AssertionError(f"session closed before {fragment!r}: {received[-3:]}")
            received.append(chunk)

    await asyncio.wait_for(read(), timeout)


def test_keys_typed_while_a_statement_runs_are_echoed_together_and_bounded(
    host: Host, keys: Keys
) -> None:
    """1 MB typed during a statement: echoed in a few packets (one per key before), only
    4096 characters kept (the bell rings past that), and the manhole keeps answering."""

    async def scenario() -> tuple[int, str]:
        connection, process, channel = await _pty_session(host.port, keys)
        async with connection:
            received: list[str] = []
            await _read_until(process, ">>>", received, 20)
            packets = 0
            original = channel._session.data_received

            def count(data: str, datatype: Any) -> None:
                nonlocal packets
                packets += 1
                original(data, datatype)

            channel._session.data_received = count
            process.stdin.write("import time; print('G' + 'O'); time.sleep(3)\r")
            await _read_until(process, "GO", received, 20)
            received.clear()
            packets = 0
            for _ in range(16):
                process.stdin.write("a" * 65536)
            await process.stdin.drain()
            await _read_until(process, "\a", received, 20)
            assert await asyncio.to_thread(answers, host, keys)
            echoed = "".join(received)
            return packets, echoed

    packets, echoed = asyncio.run(scenario())
    assert echoed.count("a") == 4096
    assert packets < 40
    assert answers(host, keys) and host.alive()


def test_huge_sizes_and_resize_storms_do_not_stall_the_manhole(host: Host, keys: Keys) -> None:
    """4294967295x4294967295 (hours of CPU before), 1000000x50 and 5000 resizes: clamped
    and coalesced; the session still answers, and so does another one."""

    async def scenario() -> str:
        connection, process, channel = await _pty_session(host.port, keys)
        async with connection:
            received: list[str] = []
            await _read_until(process, ">>>", received, 20)
            channel.change_terminal_size(4294967295, 4294967295)
            channel.change_terminal_size(1000000, 50)
            for number in range(5000):
                channel.change_terminal_size(60 + number % 40, 20 + number % 10)
            channel.change_terminal_size(4294967295, 4294967295)
            assert await asyncio.to_thread(answers, host, keys)
            channel.change_terminal_size(80, 24)
            received.clear()
            process.stdin.write("6 * 9\r")
            await _read_until(process, "54", received, 20)
            return "".join(received)

    assert "54" in asyncio.run(scenario())
    assert answers(host, keys) and host.alive()


def test_output_is_bounded_when_a_client_with_a_huge_window_stops_reading(
    host: Host, keys: Keys
) -> None:
    """A client announcing a 4 GB window, then reading nothing: the statement's writes
    wait once the socket holds its bound (before: the host buffered all, 1 GB printed made
    900 MB), and Ctrl-C still interrupts it."""
    assert answers(host, keys)
    before = rss_kb(host.process.pid)

    async def scenario() -> int | None:
        async with asyncssh_client(
            host.port, username="alice", client_keys=[keys.client_key]
        ) as connection:
            process = await connection.create_process(
                "while True: print('x' * 1000)", window=2**32 - 1
            )
            connection._transport.pause_reading()  # the client reads nothing more
            blocked = (
                "import sys; any('streams.py' in line and '_condition.wait' in line for frame"
                " in sys._current_frames().values() for line in __import__('traceback')"
                ".format_stack(frame))"
            )

            def still_blocked() -> bool:
                return exec_code(host.port, keys.client_key, blocked).stdout == "True\n"

            waiting = "the flooding statement to wait in its write"
            await asyncio.to_thread(wait_for, still_blocked, 30, waiting)
            for _ in range(5):  # and it stays there: (each look is a login and a statement)
                assert await asyncio.to_thread(still_blocked)
            assert rss_kb(host.process.pid) - before < 20_000
            process.channel.send_signal("INT")
            connection._transport.resume_reading()
            completed = await asyncio.wait_for(process.wait(), 30)
            return completed.exit_status

    assert asyncio.run(scenario()) == 1
    assert answers(host, keys) and host.alive()


def test_env_requests_are_refused_and_audited(audited_host: tuple[Host, Path], keys: Keys) -> None:
    """env requests are refused (asyncssh kept them all: 245 MB from 8,000 of 30 kB), and
    each refusal is in the audit trail."""
    host, audit_file = audited_host

    async def scenario() -> str:
        async with asyncssh_client(
            host.port, username="alice", client_keys=[keys.client_key]
        ) as connection:
            completed = await connection.run(
                "import os; os.environ.get('MANHOLE_TEST_VAR'), len(os.environ) > 0",
                env={"MANHOLE_TEST_VAR": "v" * 30_000, "LANG": "C"},
            )
            return str(completed.stdout)

    assert asyncio.run(scenario()) == "(None, True)\n"
    refused = [event for event in read_events(audit_file) if event["event"] == "env_refused"]
    assert {event["name"] for event in refused} == {"MANHOLE_TEST_VAR", "LANG"}
    assert answers(host, keys) and host.alive()


def test_a_terminal_asked_for_after_the_start_is_refused(host: Host, keys: Keys) -> None:
    """pty-req after exec has started is answered "failure", as sshd does (it was
    "success", and switched a script session into terminal handling)."""

    async def scenario() -> tuple[bool, str]:
        async with asyncssh_client(
            host.port, username="alice", client_keys=[keys.client_key]
        ) as connection:
            process = await connection.create_process(
                "import sys; sys.stdin.readline(); print(sys.stdout.isatty())"
            )
            granted = await process.channel._make_request(
                b"pty-req",
                String("xterm"),
                UInt32(80),
                UInt32(24),
                UInt32(0),
                UInt32(0),
                String(b""),
            )
            process.stdin.write("go\n")
            completed = await asyncio.wait_for(process.wait(), 20)
            return bool(granted), str(completed.stdout)

    assert asyncio.run(scenario()) == (False, "False\n")
    assert answers(host, keys) and host.alive()


def test_the_prompt_stops_reading_keys_while_its_client_reads_nothing(
    host: Host, keys: Keys
) -> None:
    """Each F2 draws ptpython's menu again (5 kB for 4 bytes typed at 1000x1000): a client
    that types without reading made the host pile drawings up without end. Now the
    server stops reading its channel (the SSH window then holds the client back) until
    the client reads again. Seen from another session, as an operator would look."""
    reading_paused = (
        "import gc, manhole_ssh.session.channel as s; any(o._channel._recv_paused for o in "
        "gc.get_objects() if isinstance(o, s.ManholeSession) and o._terminal)"
    )

    def paused() -> bool:
        return exec_code(host.port, keys.client_key, reading_paused).stdout == "True\n"

    async def scenario() -> str:
        connection, process, channel = await _pty_session(host.port, keys, window=65536)
        async with connection:
            received: list[str] = []
            await _read_until(process, ">>>", received, 20)
            channel.change_terminal_size(1000, 1000)
            channel.pause_reading()  # no more window for the server: its output waits
            for _ in range(30):
                for _ in range(20):
                    process.stdin.write("\x1bOQ")  # F2
                    await asyncio.sleep(0.01)
                if await asyncio.to_thread(paused):
                    break
            else:
                raise AssertionError("the server went on reading keys it could not answer")
            channel.resume_reading()
            await asyncio.to_thread(wait_for, lambda: not paused(), 30, "reading to resume")
            received.clear()
            process.stdin.write("\x036 * 9\r")
            await _read_until(process, "54", received, 30)
            return "".join(received)

    assert "54" in asyncio.run(scenario())
    assert answers(host, keys) and host.alive()


def _writers_waiting() -> int:
    """Threads of this process waiting in a session's output (a client not reading)."""
    return sum(
        frame.f_code.co_name == "_write_piece"
        or (frame.f_back is not None and frame.f_back.f_code.co_name == "_write_piece")
        for frame in sys._current_frames().values()
    )


@pytest.mark.parametrize("ending", ["revoke", "stop"])
def test_a_statement_waiting_on_a_stalled_client_ends_on_revoke_and_stop(
    keys: Keys, ending: str
) -> None:
    """The statement whose writes wait for a client that reads nothing is not stuck there:
    revoking its key, or stopping the manhole, ends it."""
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    fingerprint = asyncssh.read_public_key(keys.client_key.with_suffix(".pub")).get_fingerprint()

    async def scenario() -> None:
        async with asyncssh_client(manhole.port, client_keys=[str(keys.client_key)]) as client:
            await client.create_process("while True: print('x' * 1000)", window=2**32 - 1)
            client._transport.pause_reading()
            await asyncio.to_thread(wait_for, _writers_waiting, 30, "the writer to wait")
            if ending == "revoke":
                manhole.revoke(fingerprint)
            else:
                await asyncio.to_thread(manhole.stop, 5.0)
            await asyncio.to_thread(
                wait_for, lambda: not _writers_waiting(), 10, "the writer to be ended"
            )

    try:
        asyncio.run(scenario())
    finally:
        manhole_ssh.uninstall()
    assert manhole.error is None


@pytest.mark.parametrize("piece", [1, 2, 5, 7, 4096])
def test_a_paste_cut_anywhere_is_held_whole(piece: int) -> None:
    """However the packets cut a paste (its markers included), the prompt gets the typed
    text around it as typed, and the paste whole, once; one over the limit not at all. A
    final ESC (the Escape key, or the start of a paste) waits for what follows, and is
    released as typed if nothing does."""
    typed = "ab\x1b[A" + "\x1b[200~" + "x = 1\n" * 3000 + "\x1b[201~" + "cd\x1b"
    limit = PasteLimit(limit=18_000)
    given: list[str | Paste] = []
    for start in range(0, len(typed), piece):
        pieces, refused = limit.filter(typed[start : start + piece])
        assert not refused
        given += pieces
    assert limit.holding_back
    given.append(limit.release())
    assert "".join(str(part) for part in given) == typed
    assert [part for part in given if isinstance(part, Paste)] == [Paste("x = 1\n" * 3000)]
    assert PasteLimit(limit=17_999).filter(typed) == (["ab\x1b[A", "cd"], True)


def test_a_burst_of_requests_does_not_hold_other_sessions_up(host: Host, keys: Keys) -> None:
    """5,000 window-change requests sent at once (500 kB of small packets): asyncssh handled
    a whole read of them (up to 256 kB, 2,500 packets) before any other session's turn.
    Another session's statement now answers well within the burst's time.
    (A ratio of two times from the same run, not a time limit.)"""

    async def scenario() -> tuple[float, float]:
        connection, process, channel = await _pty_session(host.port, keys)
        async with (
            connection,
            asyncssh_client(host.port, username="alice", client_keys=[keys.client_key]) as other,
        ):
            received: list[str] = []
            await _read_until(process, ">>>", received, 20)
            assert (await other.run("6 * 7")).stdout == "42\n"  # its channel opens are warm
            received.clear()
            loop = asyncio.get_running_loop()
            resizes = [
                _window_change(channel._send_chan, 60 + number % 40, 20 + number % 10)
                for number in range(5_000)
            ]
            send_raw(connection, resizes)  # encrypted first, then sent in one write
            process.stdin.write("6 * 9\r")
            started = loop.time()
            answered = await other.run("6 * 7")
            other_took = loop.time() - started
            assert answered.stdout == "42\n"
            await _read_until(process, "54", received, 60)
            return other_took, loop.time() - started

    other_took, burst_took = asyncio.run(scenario())
    # Before: 0.99 of it. Now 0.05-0.15 (the more, the busier the machine).
    assert other_took < burst_took / 2, (other_took, burst_took)
    assert answers(host, keys) and host.alive()
