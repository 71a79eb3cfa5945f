"""A fast unit layer, run in seconds with ``make test-fast``: the executor (interrupt,
abandon, exit), the channel's input and output (line editing, back-pressure) and
authorized_keys reloading, driven directly, without ssh."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from pathlib import Path

import asyncssh

from manhole_ssh.access.authorized_keys import AuthorizedKeys
from manhole_ssh.session.executor import Executor, OutcomeKind
from manhole_ssh.session.streams import ChannelInput, ChannelOutput, SessionStreams


def _executor() -> Executor:
    streams = SessionStreams(io.StringIO(), io.StringIO(), io.StringIO())
    return Executor("manhole-ssh-unit-test", streams, None)


def test_executor_returns_value_error_and_exit() -> None:
    async def main() -> None:
        executor = _executor()
        try:
            done = await executor.run(lambda: 6 * 7)
            assert (done.kind, done.value) == (OutcomeKind.DONE, 42)
            failed = await executor.run(lambda: 1 / 0)
            assert failed.kind is OutcomeKind.ERROR
            assert isinstance(failed.exception, ZeroDivisionError)
            exited = await executor.run(lambda: exit(3))
            assert (exited.kind, exited.value) == (OutcomeKind.EXIT, 3)
        finally:
            executor.close()

    asyncio.run(main())


def test_executor_interrupts_a_python_loop() -> None:
    started = threading.Event()

    def spin() -> None:
        started.set()
        while True:
            time.sleep(0.001)

    async def main() -> None:
        executor = _executor()
        try:
            running = asyncio.ensure_future(executor.run(spin))
            await asyncio.to_thread(started.wait, 10)
            assert executor.interrupt()
            outcome = await asyncio.wait_for(running, 10)
            assert outcome.kind is OutcomeKind.INTERRUPTED
            again = await executor.run(lambda: "still usable")
            assert again.value == "still usable"
        finally:
            executor.close()

    asyncio.run(main())


def test_executor_abandons_a_statement_blocked_in_c_and_goes_on() -> None:
    held = threading.Lock()
    held.acquire()
    started = threading.Event()

    def blocked() -> None:
        started.set()
        held.acquire()  # in C: the interrupt cannot reach it
        held.release()

    async def main() -> None:
        executor = _executor()
        try:
            running = asyncio.ensure_future(executor.run(blocked))
            await asyncio.to_thread(started.wait, 10)
            executor.interrupt()
            outcome = await asyncio.wait_for(running, 10)
            assert outcome.kind is OutcomeKind.ABANDONED
            after = await executor.run(threading.current_thread)
            assert isinstance(after.value, threading.Thread)
            assert after.value.name != outcome.thread_name  # a new worker
        finally:
            held.release()
            executor.close()
            executor.join(10)

    asyncio.run(main())


def test_channel_input_edits_a_typed_line_as_a_terminal_does() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        stdin = ChannelInput(
            loop, pause_reading=lambda: None, resume_reading=lambda: None, tty=True
        )
        echoed: list[str] = []
        stdin.feed_typed("abx\x7fc\x15xyz\r", echoed.append)
        assert await asyncio.to_thread(stdin.readline) == "xyz\n"
        assert "\b \b" in "".join(echoed)
        stdin.feed_typed("\x04", echoed.append)  # Ctrl-D on an empty line: end of file, once
        assert await asyncio.to_thread(stdin.readline) == ""

    asyncio.run(main())


def test_channel_input_pauses_reading_past_its_limit_and_resumes_once_read() -> None:
    calls: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stdin = ChannelInput(
            loop,
            pause_reading=lambda: calls.append("pause"),
            resume_reading=lambda: calls.append("resume"),
            tty=False,
            limit=8,
        )
        stdin.feed(b"0123456789abcdef")
        assert calls == ["pause"]
        assert await asyncio.to_thread(stdin.read, 16) == "0123456789abcdef"
        for _ in range(100):
            if "resume" in calls:
                break
            await asyncio.sleep(0.01)
        assert calls == ["pause", "resume"]

    asyncio.run(main())


def test_channel_output_makes_writers_wait_while_the_channel_is_paused() -> None:
    sent: list[bytes] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        output = ChannelOutput(loop, sent.append, pty=True)
        output.pause()
        writer = asyncio.ensure_future(asyncio.to_thread(output.write, "a\nb"))
        await asyncio.sleep(0.2)
        assert not writer.done()  # back-pressure: the writer waits for the client
        output.resume()
        await asyncio.wait_for(writer, 10)
        for _ in range(100):
            if b"".join(sent) == b"a\r\nb":
                break
            await asyncio.sleep(0.01)
        assert b"".join(sent) == b"a\r\nb"  # and the pty's newline translation

    asyncio.run(main())


def test_authorized_keys_are_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    first = asyncssh.generate_private_key("ssh-ed25519")
    second = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "authorized_keys"
    path.write_bytes(first.export_public_key("openssh"))
    path.chmod(0o600)
    keys = AuthorizedKeys(path)
    assert keys.match(first, "127.0.0.1")[0] is not None
    assert keys.match(second, "127.0.0.1")[0] is None
    path.write_bytes(second.export_public_key("openssh") + b"# now the second key only\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert keys.match(first, "127.0.0.1")[0] is None
    assert keys.match(second, "127.0.0.1")[0] is not None
    path.chmod(0o666)  # unsafe: every key refused, none let in by a stale copy
    assert keys.match(second, "127.0.0.1")[0] is None
