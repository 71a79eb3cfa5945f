"""Standard streams that route by session, and the channel-backed streams sessions use.

The host's ``sys.stdout``/``sys.stderr``/``sys.stdin`` are wrapped once by a
:class:`ThreadRoutedStream`: code running for a session reads and writes the session; all
other code, the host's own included, goes on using the host's stream untouched. "Running for
a session" means: in the session's worker thread (bound while a statement runs), or else in
the statement's context (a context variable set at the same time). The context follows the
statement where its thread cannot: a coroutine of the statement run on the host's loop
(top-level ``await``), and the tasks and callbacks it schedules there, which asyncio runs in
a copy of the context they were made in. The host's own tasks on that loop have contexts of
their own, without it. Code on the host's loop may not read the session's stdin (the loop
would wait for the user's typing) and never waits for a slow client (see
:class:`ChannelOutput`).

:class:`ChannelOutput` is what a worker thread writes into: it is thread-safe, hands text to
the server's loop without blocking on the network, and stops the writer (with back-pressure)
when the client reads slower than the code prints, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import io
import re
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from ..green import originals

if TYPE_CHECKING:
    import asyncssh

__all__ = [
    "MAX_QUEUED_BYTES",
    "MAX_TYPEAHEAD",
    "ChannelInput",
    "ChannelOutput",
    "SessionStreams",
    "ThreadRoutedStream",
    "bind_session_streams",
    "install_routing",
    "on_a_host_loop",
    "unsent_bytes",
]

# CSI and SS3 sequences and other two-character escapes, as terminals send them.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|O.|.)?")
# How much text may wait for the loop before a writing thread is made to wait.
_HIGH_WATER = 256 * 1024
# How much text written on an event loop's thread (a statement's coroutine on the host's
# loop) may wait for a client that is not reading: such a writer is never made to wait,
# since that would stall the host's loop; past this, its output is dropped, and the
# session is told how much.
_LOOP_WRITER_LIMIT = 1024 * 1024
# A write is handed to the loop in pieces of at most this many characters, each waiting
# for room: one ``print()`` of a gigabyte is held back like a gigabyte of small ones.
_WRITE_PIECE = 64 * 1024
# Bytes the connection's socket may hold unsent before the writers of its sessions wait,
# whatever the SSH window says (a client can announce 4 GB and then read nothing).
MAX_QUEUED_BYTES = 1024 * 1024
# How often the loop looks again at a full socket buffer (seconds).
_CONGESTION_CHECK = 0.02
# Keys typed while a statement runs, kept for it or for the next prompt (characters); past
# this, keys are dropped and the terminal bell rings, as a full tty does (Linux keeps 4096).
MAX_TYPEAHEAD = 4096
# What typed keys mean to the line discipline (see ChannelInput.feed_typed).
_TYPED_TOKEN = re.compile(r"[^\x00-\x1f\x7f]+|.", re.DOTALL)
# Blocking waits in worker threads wake up this often, so that an interrupt
# (delivered with PyThreadState_SetAsyncExc) is raised promptly.
_WAIT_SLICE = 0.05


class ChannelOutput:
    """A thread-safe, back-pressured text sink feeding one channel stream.

    :param loop: the server's loop, which owns the channel.
    :param send: called on the loop with encoded bytes to send.
    :param pty: translate ``\\n`` to ``\\r\\n``, as a terminal's line discipline would.
    :param queued_bytes: how many bytes the connection's socket holds unsent (called on the
        loop); writers wait while it is over ``MAX_QUEUED_BYTES``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[bytes], object],
        *,
        pty: bool,
        queued_bytes: Callable[[], int] = lambda: 0,
    ) -> None:
        self._loop = loop
        self._send = send
        self._pty = pty
        self._queued_bytes = queued_bytes
        self._condition = originals.new_condition()
        self._pending: list[str] = []
        self._pending_size = 0
        self._flush_scheduled = False
        self._paused = False
        self._congested = False  # the socket holds too much: see _check_congestion
        self._congestion_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._unwaited = 0  # characters taken from writers that may not wait, while behind
        self._dropped = 0  # characters dropped from them past _LOOP_WRITER_LIMIT
        self._dropping = False  # their output is dropped until the client catches up
        # Called (on the loop) with what other threads wrote and the function that sends
        # text; returns what it held back (a line not ended yet), sent with the next text.
        self.around_their_output: Callable[[str, Callable[[str], None]], str] | None = None
        self._held = ""

    def write(self, text: str, *, wait: bool = True) -> int:
        """Queue ``text`` for the channel; with ``wait`` (a worker thread), wait while the
        client is behind; without (an event loop's thread), drop it once the client is
        :data:`_LOOP_WRITER_LIMIT` behind."""
        if self._on_loop():
            if self.around_their_output is None:
                self._flush()  # what other threads wrote first, in order
            # (else it is on its way, through the REPL, which is what writes here)
            self._send_now(text)
            return len(text)
        for start in range(0, len(text), _WRITE_PIECE):
            self._write_piece(text[start : start + _WRITE_PIECE], wait)
        return len(text)

    def _write_piece(self, text: str, wait: bool) -> None:
        with self._condition:
            if not wait and self.congested:
                if self._dropping or self._unwaited + len(text) > _LOOP_WRITER_LIMIT:
                    # Dropped until the client catches up (not a newline kept here and
                    # there), and the session is told then.
                    self._dropping = True
                    self._dropped += len(text)
                    return
                self._unwaited += len(text)
            while wait and self.congested and not self._closed:
                self._condition.wait(_WAIT_SLICE)
            if self._closed:
                return  # the client is gone: output is dropped, the code goes on
            self._pending.append(text)
            self._pending_size += len(text)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon_threadsafe(self._flush_from_writers)

    @property
    def congested(self) -> bool:
        """Whether a writer must wait: the client is not taking what was sent."""
        return self._paused or self._congested or self._pending_size > _HIGH_WATER

    def pause(self) -> None:
        """The channel's send window is full (called on the loop)."""
        with self._condition:
            self._paused = True

    def resume(self) -> None:
        """The channel can take more (called on the loop)."""
        with self._condition:
            self._paused = False
            self._caught_up()
            self._condition.notify_all()

    def _caught_up(self) -> None:
        """The client takes output again (on the loop, holding the condition): writers on
        the loop queue again, and what was dropped meanwhile is told."""
        self._unwaited = 0
        self._dropping = False
        if self._dropped and not self._flush_scheduled:
            self._flush_scheduled = True  # to say what was dropped
            self._loop.call_soon(self._flush_from_writers)

    def drain(self) -> None:
        """Send what is waiting now, and say what was dropped (called on the loop, as the
        session ends)."""
        with self._condition:
            self._dropping = False
        self._flush()

    def close(self) -> None:
        """The channel is gone: release every waiting writer and drop later output."""
        with self._condition:
            self._closed = True
            self._pending.clear()
            self._pending_size = 0
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _flush_from_writers(self) -> None:
        """Send, on the loop, what other threads wrote: through ``around_their_output``
        when set (the REPL, moving its prompt out of the way)."""
        around = self.around_their_output
        text = self._take_pending()  # before the REPL's own writes (an erase) flush it
        if around is None:
            self._send_now(text)
        elif text:
            self._held = around(text, self._send_now)

    def _flush(self) -> None:
        self._send_now(self._take_pending())

    def _take_pending(self) -> str:
        """What is waiting to be sent (and what was dropped, once that is over)."""
        with self._condition:
            text = self._held + "".join(self._pending)
            self._held = ""
            self._pending.clear()
            self._pending_size = 0
            self._flush_scheduled = False
            if not (self._paused or self._congested):  # the client is keeping up
                self._unwaited = 0
                self._dropping = False
            if self._dropped and not self._dropping:  # said once the dropping is over
                text += (
                    f"\n[manhole-ssh: {self._dropped} characters printed on the service's "
                    "event loop were dropped: the client was not reading them, and the loop "
                    "is never made to wait]\n"
                )
                self._dropped = 0
            self._condition.notify_all()
        return text

    def _send_now(self, text: str) -> None:
        if self._closed or not text:
            return
        if self._pty:
            text = text.replace("\n", "\r\n")
        try:
            self._send(text.encode("utf-8", "replace"))
        except BrokenPipeError:
            # The client has closed the channel; the server has not let go of the session
            # yet (it does once the input it still holds is consumed). Nothing more goes.
            self.close()
        if self._congestion_timer is None:
            self._check_congestion()

    def _check_congestion(self) -> None:
        """Hold the writers while the socket holds over MAX_QUEUED_BYTES unsent, and look
        again every _CONGESTION_CHECK until it has half that (called on the loop)."""
        self._congestion_timer = None
        queued = 0 if self._closed else self._queued_bytes()
        congested = queued > (MAX_QUEUED_BYTES // 2 if self._congested else MAX_QUEUED_BYTES)
        if congested != self._congested:
            with self._condition:
                self._congested = congested
                if not congested and not self._paused:
                    self._caught_up()
                self._condition.notify_all()
        if congested:
            self._congestion_timer = self._loop.call_later(
                _CONGESTION_CHECK, self._check_congestion
            )


class SessionTextStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` as seen by a session's thread."""

    def __init__(self, output: ChannelOutput, *, name: str, tty: bool) -> None:
        self._output = output
        self._name = name
        self._tty = tty

    encoding = "utf-8"
    errors = "replace"

    @property
    def name(self) -> str:
        return self._name

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        return self._output.write(text, wait=not on_a_host_loop())

    def flush(self) -> None:
        """Nothing to wait for: each write has already asked the loop to send it, ahead of
        anything the statement does next (its end, the next prompt). Waiting for the loop
        here only held the worker, which, with many sessions busy, woke every 50 ms to
        check for Ctrl-C, taking the GIL from the loop that it was waiting for."""


class ChannelInput(io.TextIOBase):
    """``sys.stdin`` as seen by a session's thread: what the client sends, as text.

    Fed on the loop by :meth:`feed`; read by the worker thread, which waits in short slices
    so that Ctrl-C still reaches it. When more than ``limit`` characters are waiting the
    channel is paused, so a client cannot fill the host's memory.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        pause_reading: Callable[[], object],
        resume_reading: Callable[[], object],
        tty: bool,
        limit: int = _HIGH_WATER,
    ) -> None:
        self._loop = loop
        self._pause_reading = pause_reading
        self._resume_reading = resume_reading
        self._tty = tty
        self._limit = limit
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._condition = originals.new_condition()
        self._buffer = ""
        self._line = ""  # a typed line not yet ended with Enter (see feed_typed)
        self._eof = False
        self._eof_once = False  # Ctrl-D on an empty typed line: one read returns ""
        self._reading_paused = False
        self._typed_sink: Callable[[str], object] | None = None

    encoding = "utf-8"
    name = "<stdin>"

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def feed(self, data: bytes | str) -> None:
        """Add what the client sent (called on the loop)."""
        text = data if isinstance(data, str) else self._decoder.decode(data)
        with self._condition:
            self._buffer += text
            if len(self._buffer) > self._limit and not self._reading_paused:
                self._reading_paused = True
                self._pause_reading()
            self._condition.notify_all()

    def feed_typed(self, text: str, echo: Callable[[str], object], *, quiet: bool = False) -> None:
        """Keys typed on a terminal while code runs (called on the loop).

        Handled as a terminal's line discipline would (ICANON, ECHO, ICRNL): echoed, edited
        with Backspace and Ctrl-U, and readable a line at a time, on Enter; Ctrl-D on an
        empty line is end-of-file for that read. Escape sequences (arrows, terminal
        replies) are dropped rather than echoed. What one call echoes goes out in one
        write (one SSH packet, not one per key). While :meth:`divert_typed` has a sink, the
        keys go there instead, as typed.

        At most ``MAX_TYPEAHEAD`` characters are kept (unread lines and the line being
        typed): past that, keys are dropped and the bell rings once per call, as a full
        tty does (IMAXBEL). The channel is never paused for them: a Ctrl-C must get
        through. Nothing is echoed while the client is not reading (``quiet``).
        """
        sink = self._typed_sink
        if sink is not None:
            sink(text)
            return
        echoed: list[str] = []
        bell = False
        for token in _TYPED_TOKEN.findall(_ESCAPE_SEQUENCE.sub("", text)):
            if token in "\r\n":
                if len(self._line) + len(self._buffer) >= MAX_TYPEAHEAD:
                    bell = True
                    continue
                echoed.append("\r\n")
                self._commit_line("\n")
            elif token in "\x7f\x08":
                if self._line:
                    self._line = self._line[:-1]
                    echoed.append("\b \b")
            elif token == "\x15":
                echoed.append("\b \b" * len(self._line))
                self._line = ""
            elif token == "\x04":
                self._commit_line("")
            elif token >= " " or token == "\t":
                room = MAX_TYPEAHEAD - len(self._line) - len(self._buffer)
                if len(token) > room:
                    token, bell = token[: max(room, 0)], True
                self._line += token
                echoed.append(token)
        if bell:
            echoed.append("\a")
        if echoed and not quiet:
            echo("".join(echoed))

    def divert_typed(self, sink: Callable[[str], object] | None) -> None:
        """Hand keys typed on the terminal to ``sink`` (called on the loop), unechoed and
        unedited, until called with ``None``: for code that reads keys, not lines (a pager)."""
        self._typed_sink = sink

    def _commit_line(self, end: str) -> None:
        line, self._line = self._line + end, ""
        with self._condition:
            if line:
                self._buffer += line
            else:
                self._eof_once = True
            self._condition.notify_all()

    def feed_eof(self) -> None:
        with self._condition:
            self._buffer += self._decoder.decode(b"", final=True)
            self._eof = True
            self._condition.notify_all()

    def take_unread(self) -> str:
        """Remove and return what no one has read, as keys typed ahead of the next prompt."""
        with self._condition:
            text = (self._buffer + self._line).replace("\n", "\r")
            self._buffer = self._line = ""
            self._eof_once = False
            return text

    def read(self, size: int | None = -1) -> str:
        with self._condition:
            while not self._at_eof() and (size is None or size < 0 or len(self._buffer) < size):
                self._condition.wait(_WAIT_SLICE)
            return self._take(len(self._buffer) if size is None or size < 0 else size)

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        with self._condition:
            while "\n" not in self._buffer and not self._at_eof():
                if size is not None and 0 <= size <= len(self._buffer):
                    break
                self._condition.wait(_WAIT_SLICE)
            end = self._buffer.find("\n") + 1 or len(self._buffer)
            if size is not None and size >= 0:
                end = min(end, size)
            return self._take(end)

    def _at_eof(self) -> bool:
        if self._eof_once and not self._buffer:
            self._eof_once = False
            return True
        return self._eof

    def _take(self, count: int) -> str:
        text, self._buffer = self._buffer[:count], self._buffer[count:]
        if self._reading_paused and len(self._buffer) <= self._limit // 2:
            self._reading_paused = False
            self._loop.call_soon_threadsafe(self._resume_reading)
        return text


class SessionStreams:
    """The three streams one session's thread sees."""

    def __init__(self, stdout: io.TextIOBase, stderr: io.TextIOBase, stdin: io.TextIOBase) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin


_bound = originals.local()
# The session whose statement the current code runs for (and its tasks, which inherit it).
_session_streams: contextvars.ContextVar[SessionStreams | None] = contextvars.ContextVar(
    "manhole_ssh_session_streams", default=None
)


class _StdinOnTheLoop(io.TextIOBase):
    """``sys.stdin`` for a statement's code running on the host's event loop (a statement
    that awaits runs there whole): reading would stop the host's whole loop until a line
    came, and Ctrl-C, itself a callback on that loop, could not end the wait."""

    encoding = "utf-8"
    name = "<stdin>"

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        raise RuntimeError(
            "sys.stdin cannot be read on the service's event loop: this statement awaits, so it "
            "runs there, and the whole loop would wait for your typing. Read input in a "
            "statement of its own (without await), then use it in the next one."
        )

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self.read()


_STDIN_ON_THE_LOOP = _StdinOnTheLoop()


def on_a_host_loop() -> bool:
    """Whether the calling code runs on an event loop's thread other than a session's
    worker: the host's loop (where a statement that awaits runs whole), which nothing a
    session does may make wait: not for the client, the user's typing, or a command."""
    if getattr(_bound, "streams", None) is not None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class ThreadRoutedStream:
    """Stands in for ``sys.stdout``/``sys.stderr``/``sys.stdin``: code running for a session
    (its worker thread, else its context) gets the session's stream, all other code the host's own
    (``host``), attribute for attribute."""

    def __init__(self, name: str, host: TextIO) -> None:
        object.__setattr__(self, "_manhole_name", name)
        object.__setattr__(self, "_manhole_host", host)

    def _manhole_target(self) -> TextIO:
        streams = getattr(_bound, "streams", None)  # the session's worker thread
        if streams is None:
            streams = _session_streams.get()
            if streams is None:  # the host's own code: the cheapest path
                host: TextIO = object.__getattribute__(self, "_manhole_host")
                return host
            if object.__getattribute__(self, "_manhole_name") == "stdin" and on_a_host_loop():
                return _STDIN_ON_THE_LOOP  # type: ignore[return-value]
        target: TextIO = getattr(streams, object.__getattribute__(self, "_manhole_name"))
        return target

    def write(self, text: str) -> int:
        return self._manhole_target().write(text)

    def flush(self) -> None:
        self._manhole_target().flush()

    def __getattr__(self, attribute: str) -> object:
        return getattr(self._manhole_target(), attribute)

    def __setattr__(self, attribute: str, value: object) -> None:
        setattr(self._manhole_target(), attribute, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._manhole_target())

    def __repr__(self) -> str:
        return repr(self._manhole_target())


_install_lock = originals.allocate_lock()


def install_routing() -> None:
    """Wrap ``sys.stdout``, ``sys.stderr`` and ``sys.stdin`` (again, if the host replaced
    them since). Idempotent; the host's threads see no difference."""
    with _install_lock:
        for name in ("stdout", "stderr", "stdin"):
            current = getattr(sys, name)
            if not isinstance(current, ThreadRoutedStream):
                setattr(sys, name, ThreadRoutedStream(name, current))


@contextlib.contextmanager
def bind_session_streams(streams: SessionStreams) -> Iterator[None]:
    """Route the standard streams to ``streams`` while the block runs: in the calling
    thread, and in the current context, which the coroutines and tasks the block starts on
    any loop inherit."""
    install_routing()
    previous = getattr(_bound, "streams", None)
    _bound.streams = streams
    token = _session_streams.set(streams)
    try:
        yield
    finally:
        _session_streams.reset(token)
        _bound.streams = previous


def unsent_bytes(conn: asyncssh.SSHServerConnection) -> int:
    """Bytes the connection's socket holds, written but not yet sent (0 once it is gone).

    The SSH window does not bound this: a client may announce a window of 4 GB and read
    nothing, and asyncssh then writes all it is given into the transport, whose buffer
    grows without end. Sessions make their writers wait on this instead (see
    :class:`ChannelOutput`).
    """
    transport = getattr(conn, "_transport", None)
    size = getattr(transport, "get_write_buffer_size", None)
    return int(size()) if size is not None else 0
