"""What a client types, on its way into the REPL's prompt, without ever blocking the loop.

ptpython reads keys from a pipe. Writing into that pipe with a blocking ``write`` on the
server's loop (as ``PipeInput.send_text`` does) froze the whole manhole for good once a
paste filled it (64 KB on Linux): the loop waited for itself to read the other end.
:class:`PipeFeed` writes what the pipe takes, keeps the rest, and stops reading the
channel while too much waits, so the client is held back by the SSH window instead.

:class:`PasteLimit` holds a bracketed paste (what a terminal sends between ``ESC[200~``
and ``ESC[201~``) until its end, so that the prompt gets it whole, or, past the limit,
not at all and the session is told why.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import struct
import termios
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_PASTE_CHARACTERS", "Paste", "PasteLimit", "PipeFeed", "ReadingGate", "unread_bytes"]

# The longest bracketed paste the prompt takes (characters): about 1 MB of code, well
# beyond what anyone pastes into a prompt, and what ptpython edits and draws in well
# under a second. A longer script goes through ``ssh -T host < script.py``.
MAX_PASTE_CHARACTERS = 1024 * 1024
# How many bytes may wait for the pipe before the channel stops being read.
_QUEUE_LIMIT = 256 * 1024
_WRITE_CHUNK = 64 * 1024

_PASTE_START = "\x1b[200~"
_PASTE_END = "\x1b[201~"


class ReadingGate:
    """A channel's reading, paused while any of its holders asks (the prompt's pipe is
    full; the client is not reading what it is sent), resumed once none does."""

    def __init__(self, pause: Callable[[], object], resume: Callable[[], object]) -> None:
        self._pause = pause
        self._resume = resume
        self._holders: set[str] = set()

    def hold(self, holder: str) -> None:
        if not self._holders:
            self._pause()
        self._holders.add(holder)

    def release(self, holder: str) -> None:
        if holder in self._holders:
            self._holders.discard(holder)
            if not self._holders:
                self._resume()

    def held_by(self, holder: str) -> bool:
        return holder in self._holders


class PipeFeed:
    """Writes into the REPL's input pipe without blocking; pauses the channel meanwhile.
    Every method is called on the server's loop.

    :param write_fd: the pipe's write end (the manhole's own pipe, made non-blocking here).
    :param pause_reading: stop reading the channel (the client's window then closes).
    :param resume_reading: read it again.
    """

    def __init__(
        self,
        write_fd: int,
        *,
        pause_reading: Callable[[], object],
        resume_reading: Callable[[], object],
        limit: int = _QUEUE_LIMIT,
    ) -> None:
        os.set_blocking(write_fd, False)
        self._fd = write_fd
        self._pause_reading = pause_reading
        self._resume_reading = resume_reading
        self._limit = limit
        self._queue = bytearray()
        self._waiting_for_room = False
        self._reading_paused = False
        self._closed = False

    @property
    def backlog(self) -> int:
        """Bytes waiting for room in the pipe."""
        return len(self._queue)

    def send(self, data: bytes) -> None:
        if self._closed or not data:
            return
        self._queue += data
        self._write()
        if len(self._queue) > self._limit and not self._reading_paused:
            self._reading_paused = True
            self._pause_reading()

    def let_read(self) -> None:
        """Read the channel again even if keys still wait: the prompt is not reading them
        (a statement runs, and what the client sends now is for it, its Ctrl-C above all)."""
        self._resume()

    def close(self) -> None:
        """Stop writing (before the pipe is closed) and drop what waits."""
        self._closed = True
        self._queue.clear()
        self._stop_waiting()
        self._resume()

    def _write(self) -> None:
        while self._queue and not self._closed:
            try:
                written = os.write(self._fd, self._queue[:_WRITE_CHUNK])
            except BlockingIOError:
                break
            except OSError:  # the REPL has closed its end: nothing more can go in
                self.close()
                return
            del self._queue[:written]
        if self._queue and not self._waiting_for_room:
            self._waiting_for_room = True
            asyncio.get_running_loop().add_writer(self._fd, self._write)
        elif not self._queue:
            self._stop_waiting()
        if len(self._queue) <= self._limit // 2:
            self._resume()

    def _stop_waiting(self) -> None:
        if self._waiting_for_room:
            self._waiting_for_room = False
            asyncio.get_running_loop().remove_writer(self._fd)

    def _resume(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._resume_reading()


def unread_bytes(read_fd: int) -> int:
    """How many bytes wait in a pipe for its reader."""
    answer = fcntl.ioctl(read_fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", answer)[0])


@dataclass(frozen=True)
class Paste:
    """One whole bracketed paste (its text, without the markers)."""

    text: str

    def __str__(self) -> str:
        """As the terminal sent it."""
        return _PASTE_START + self.text + _PASTE_END


class PasteLimit:
    """Lets text through, holding each bracketed paste until it has ended.

    A paste of at most ``limit`` characters goes on whole, as a :class:`Paste`; a longer
    one is dropped entirely (nothing of it reaches the prompt) and :meth:`filter` says so.

    :param answers: what the terminal sends on its own (its answers to "where is the
        cursor?"): the terminal writes a long paste in pieces, and may answer between
        two of them. Found inside a paste, they are taken out and passed on at once.
    """

    def __init__(
        self, limit: int = MAX_PASTE_CHARACTERS, *, answers: re.Pattern[str] | None = None
    ) -> None:
        self._limit = limit
        self._answers = answers
        self._paste: list[str] | None = None  # the paste so far, while one is open
        self._size = 0
        self._refusing = False  # the open paste is over the limit: drop it to its end
        self._carry = ""  # a marker cut in two by the end of the last chunk

    def filter(self, text: str) -> tuple[list[str | Paste], bool]:
        """Return what may go to the prompt now (typed text and whole pastes, in order),
        and whether a paste was refused."""
        text, self._carry = self._carry + text, ""
        passed: list[str | Paste] = []
        refused = False
        while text:
            if self._paste is None:
                start = text.find(_PASTE_START)
                if start < 0:
                    keep = _cut_marker(text, _PASTE_START)
                    passed.append(text[: len(text) - keep])
                    self._carry = text[len(text) - keep :]
                    break
                passed.append(text[:start])
                text = text[start + len(_PASTE_START) :]
                self._paste, self._size, self._refusing = [], 0, False
                continue
            end = text.find(_PASTE_END)
            body = text if end < 0 else text[:end]
            if end < 0:
                keep = _cut_marker(body, _PASTE_END)
                self._carry = body[len(body) - keep :]
                body = body[: len(body) - keep]
            if self._answers is not None and "\x1b" in body:
                passed.extend(self._answers.findall(body))
                body = self._answers.sub("", body)
            if not self._refusing:
                self._size += len(body)
                if self._size > self._limit:
                    self._refusing, refused = True, True
                    self._paste.clear()
                else:
                    self._paste.append(body)
            if end < 0:
                break
            if not self._refusing:
                passed.append(Paste("".join(self._paste)))
            self._paste = None
            text = text[end + len(_PASTE_END) :]
        return [piece for piece in passed if piece], refused

    @property
    def holding_back(self) -> bool:
        """Whether typed text (what may begin a paste: the Escape key, say) waits for
        what comes next; :meth:`release` lets it go if nothing does."""
        return bool(self._carry) and self._paste is None

    def release(self) -> str:
        """The typed text held back, now taken as typed."""
        if self._paste is not None:
            return ""
        text, self._carry = self._carry, ""
        return text


def _cut_marker(text: str, marker: str) -> int:
    """How many characters at the end of ``text`` begin ``marker``."""
    for length in range(len(marker) - 1, 0, -1):
        if text.endswith(marker[:length]):
            return length
    return 0
