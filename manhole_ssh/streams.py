"""Standard streams that route by thread, and the channel-backed streams sessions use.

The host's ``sys.stdout``/``sys.stderr``/``sys.stdin`` are wrapped once by a
:class:`ThreadRoutedStream`: a thread that has a session's streams bound (its worker thread,
while a statement runs) reads and writes the session; every other thread, the host's own
included, goes on using the host's stream untouched.

:class:`ChannelOutput` is what a worker thread writes into: it is thread-safe, hands text to
the server's loop without blocking on the network, and stops the writer (with back-pressure)
when the client reads slower than the code prints, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import re
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from . import originals

__all__ = [
    "MAX_QUEUED_BYTES",
    "MAX_TYPEAHEAD",
    "ChannelInput",
    "ChannelOutput",
    "SessionStreams",
    "ThreadRoutedStream",
    "bind_session_streams",
    "install_routing",
]

# CSI and SS3 sequences and other two-character escapes, as terminals send them.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|O.|.)?")
# How much text may wait for the loop before a writing thread is made to wait.
_HIGH_WATER = 256 * 1024
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

    def write(self, text: str) -> int:
        if self._on_loop():
            self._flush()
            self._send_now(text)
            return len(text)
        for start in range(0, len(text), _WRITE_PIECE):
            self._write_piece(text[start : start + _WRITE_PIECE])
        return len(text)

    def _write_piece(self, text: str) -> None:
        with self._condition:
            while self.congested and not self._closed:
                self._condition.wait(_WAIT_SLICE)
            if self._closed:
                return  # the client is gone: output is dropped, the code goes on
            self._pending.append(text)
            self._pending_size += len(text)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon_threadsafe(self._flush)

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
            self._condition.notify_all()

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

    def _flush(self) -> None:
        with self._condition:
            text = "".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            self._flush_scheduled = False
            self._condition.notify_all()
        if text:
            self._send_now(text)
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
                self._condition.notify_all()
        if congested:
            self._congestion_timer = self._loop.call_later(
                _CONGESTION_CHECK, self._check_congestion
            )

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
        return self._output.write(text)

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
        write (one SSH packet, not one per key).

        At most ``MAX_TYPEAHEAD`` characters are kept (unread lines and the line being
        typed): past that, keys are dropped and the bell rings once per call, as a full
        tty does (IMAXBEL). The channel is never paused for them: a Ctrl-C must get
        through. Nothing is echoed while the client is not reading (``quiet``).
        """
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


class ThreadRoutedStream:
    """Stands in for ``sys.stdout``/``sys.stderr``/``sys.stdin``: a session thread gets the
    session's stream, every other thread the host's own (``host``), attribute for attribute."""

    def __init__(self, name: str, host: TextIO) -> None:
        object.__setattr__(self, "_manhole_name", name)
        object.__setattr__(self, "_manhole_host", host)

    def _manhole_target(self) -> TextIO:
        streams: SessionStreams | None = getattr(_bound, "streams", None)
        if streams is None:
            host: TextIO = object.__getattribute__(self, "_manhole_host")
            return host
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
    """Route the calling thread's standard streams to ``streams`` while the block runs."""
    install_routing()
    previous = getattr(_bound, "streams", None)
    _bound.streams = streams
    try:
        yield
    finally:
        _bound.streams = previous
