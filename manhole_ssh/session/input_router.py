"""Where what the client sends goes: on a terminal, to the REPL's prompt, to a running
statement's typeahead (Ctrl-C interrupting it), or to a debugger lent the terminal;
without one, into the script read from stdin, or a running command's stdin."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Callable

from .keyfeed import ReadingGate
from .parts import SessionParts
from .repl import Repl

__all__ = ["MAX_SCRIPT_BYTES", "InputRouter"]

_CTRL_C = "\x03"
# A script read from stdin larger than this is refused: it is code, not data.
MAX_SCRIPT_BYTES = 16 * 1024 * 1024
# How often a channel paused because its client reads nothing is looked at again (seconds).
_READING_CHECK = 0.02


class InputRouter:
    """Routes one session's input, on the server's loop.

    :param terminal: the session has a terminal (its input is text, typed).
    :param script: the session runs a script read from stdin to its end.
    :param interrupt: Ctrl-C: interrupt the running statement.
    :param fail: end the session with this message (a script too large).
    :param finished: whether the session has ended.
    """

    def __init__(
        self,
        parts: SessionParts,
        reading: ReadingGate,
        *,
        terminal: bool,
        script: bool,
        interrupt: Callable[[], None],
        fail: Callable[[str], None],
        finished: Callable[[], bool],
    ) -> None:
        self._parts = parts
        self._reading = reading
        self._terminal = terminal
        self._interrupt = interrupt
        self._fail = fail
        self._finished = finished
        self.repl: Repl | None = None  # the REPL at the prompt, while there is one
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._script = bytearray()
        self._script_complete = asyncio.Event() if script else None
        self._reading_check: asyncio.TimerHandle | None = None

    @property
    def statement_running(self) -> bool:
        """A statement runs, or the REPL has accepted one that is about to."""
        repl = self.repl
        return self._parts.runner.executor.busy or (repl is not None and repl.accepted)

    def route(self, data: bytes) -> None:
        """Hand ``data``, as the client sent it, to whoever reads it now."""
        stdin, stdout = self._parts.stdin, self._parts.stdout
        if self._terminal:
            repl = self.repl
            text = self._decoder.decode(data)
            console = self._parts.debug_console
            if console.attached:  # a debugger reads the terminal
                console.feed(repl.take_cursor_position_reports(text) if repl else text)
                return
            if repl is not None and not self.statement_running:
                repl.feed(text)
                self._hold_reading_while_output_waits()
                return
            if repl is not None:
                text = repl.take_cursor_position_reports(text)
            if _CTRL_C in text:
                self._interrupt()
                text = text.replace(_CTRL_C, "")
            if text:
                stdin.feed_typed(text, stdout.write, quiet=stdout.congested)
        elif self._script_complete is not None:
            self._script.extend(data)
            if len(self._script) > MAX_SCRIPT_BYTES:
                self._fail(f"script on stdin is over {MAX_SCRIPT_BYTES} bytes: refused\n")
        else:
            stdin.feed(data)

    def eof(self) -> None:
        """The client sends no more."""
        if self._script_complete is not None:
            self._script_complete.set()
        self._parts.stdin.feed_eof()
        if self.repl is not None:
            self.repl.close()

    async def read_script(self) -> str:
        """The script on stdin, once the client has sent all of it."""
        assert self._script_complete is not None
        await self._script_complete.wait()
        source = bytes(self._script).decode("utf-8", "replace")
        self._script.clear()
        return source

    def close(self) -> None:
        """Look at the channel's reading no more."""
        if self._reading_check is not None:
            self._reading_check.cancel()
            self._reading_check = None

    def _hold_reading_while_output_waits(self) -> None:
        """At the prompt, read no more keys while the client is not reading what it is
        sent: each key draws the prompt again, and a client typing without reading would
        otherwise pile those drawings up in the host. (Not while a statement runs: its
        Ctrl-C must get through; its output waits, and its echo is dropped, instead.)"""
        if self._parts.stdout.congested and not self.statement_running and not self._finished():
            self._reading.hold("output")
            if self._reading_check is None:
                self._reading_check = asyncio.get_running_loop().call_later(
                    _READING_CHECK, self._check_reading
                )
        else:
            self._reading.release("output")

    def _check_reading(self) -> None:
        self._reading_check = None
        self._hold_reading_while_output_waits()
