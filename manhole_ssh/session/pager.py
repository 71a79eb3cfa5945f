"""A small ``less`` drawn on a session's terminal: what ``help()`` pages with.

pydoc's own pager is a process-wide choice (``pydoc.pager`` replaces itself with the first
pager it picks) that starts ``less`` on the host's terminal: neither may be used by a guest.
This one runs in the session's worker thread, draws on the session's channel (on the
terminal's alternate screen, so the REPL's screen comes back on ``q``), and reads the keys
the session's client types while the statement runs.
"""

from __future__ import annotations

import queue
import re
from collections.abc import Callable

from ..green import originals
from .streams import ChannelInput

__all__ = ["TerminalPager"]

# One key as a terminal sends it: an escape sequence (arrows, Page Up…) or one character.
_KEY = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1bO.|\x1b.?|.", re.DOTALL)
# How often a pager waiting for a key looks at the terminal's size (and lets Ctrl-C in).
_KEY_WAIT = 0.1

_ENTER = "\x1b[?1049h\x1b[?25l"  # the alternate screen, cursor hidden
_LEAVE = "\x1b[?25h\x1b[?1049l"

_NEXT_PAGE = {" ", "f", "z", "\x06", "\x16", "\x1b[6~"}
_PREVIOUS_PAGE = {"b", "w", "\x02", "\x1bv", "\x1b[5~"}
_NEXT_LINE = {"\r", "\n", "j", "e", "\x0e", "\x1b[B", "\x1bOB"}
_PREVIOUS_LINE = {"k", "y", "\x10", "\x1b[A", "\x1bOA"}
_NEXT_HALF = {"d", "\x04"}
_PREVIOUS_HALF = {"u", "\x15"}
_TOP = {"g", "<", "\x1b[H", "\x1b[1~", "\x1bOH"}
_BOTTOM = {"G", ">", "\x1b[F", "\x1b[4~", "\x1bOF"}
_QUIT = {"q", "Q"}
_SEARCH = {"/"}
_NEXT_MATCH = {"n"}
_PREVIOUS_MATCH = {"N"}

_HINT = "space/b: page, j/k: line, g/G: top/end, /: search, n/N: next/previous, q: quit"


class _Keys:
    """Keys typed on the session's terminal, handed from the server's loop to the pager."""

    def __init__(self) -> None:
        # A real queue: the pager waits on it in the session's OS thread, gevent or not.
        self._chunks: queue.SimpleQueue[str] = originals.simple_queue()
        self._keys: list[str] = []

    def put(self, text: str) -> None:
        """Called on the server's loop with what the client typed."""
        self._chunks.put(text)

    def get(self, timeout: float) -> str | None:
        """The next key, or ``None`` if none came within ``timeout`` seconds."""
        if not self._keys:
            try:
                self._keys = _KEY.findall(self._chunks.get(timeout=timeout))
            except queue.Empty:
                return None
        return self._keys.pop(0) if self._keys else None


class TerminalPager:
    """Shows a text a screen at a time on one session's terminal, as ``less`` would.

    :param write: writes to the session's terminal (from the worker thread).
    :param stdin: the session's input, whose typed keys the pager takes while it shows.
    :param size: the terminal's current ``(columns, rows)``.
    """

    def __init__(
        self,
        write: Callable[[str], object],
        stdin: ChannelInput,
        size: Callable[[], tuple[int, int]],
    ) -> None:
        self._write = write
        self._stdin = stdin
        self._size = size

    def __call__(self, text: str) -> None:
        """Page ``text``; a text that fits on the screen is simply written (as ``less -F``)."""
        columns, rows = self._size()
        if len(_wrap(text, columns)) < rows:
            self._write(text)
            return
        keys = _Keys()
        self._stdin.divert_typed(keys.put)
        self._write(_ENTER)
        try:
            self._show(text, keys)
        finally:
            self._stdin.divert_typed(None)
            self._write(_LEAVE)

    def _show(self, text: str, keys: _Keys) -> None:
        top = 0
        search: re.Pattern[str] | None = None
        searched = ""  # the text of that search, as typed
        message = ""
        drawn: tuple[object, ...] | None = None
        wrapped_at, lines = 0, []
        while True:
            columns, rows = self._size()
            if columns != wrapped_at:  # wrapped again only when the width changes
                wrapped_at, lines = columns, _wrap(text, columns)
            height = max(1, rows - 1)
            top = max(0, min(top, len(lines) - height))
            if drawn != (top, columns, rows, search, message):
                self._draw(lines, top, columns, rows, search, message)
                drawn = (top, columns, rows, search, message)
            key = keys.get(_KEY_WAIT)
            if key is None:
                continue
            message = ""
            if key in _QUIT:
                return
            if key in _NEXT_PAGE:
                top += height
            elif key in _PREVIOUS_PAGE:
                top -= height
            elif key in _NEXT_LINE:
                top += 1
            elif key in _PREVIOUS_LINE:
                top -= 1
            elif key in _NEXT_HALF:
                top += height // 2 or 1
            elif key in _PREVIOUS_HALF:
                top -= height // 2 or 1
            elif key in _TOP:
                top = 0
            elif key in _BOTTOM:
                top = len(lines)
            elif key in _SEARCH:
                typed = self._read_pattern(keys, rows)
                if typed:
                    search, searched = _search_pattern(typed), typed
                    key = "n"
            if key in _NEXT_MATCH or key in _PREVIOUS_MATCH:
                if search is None:
                    message = "No previous search: type / and a text"
                    continue
                found = _find(lines, search, top, forward=key in _NEXT_MATCH)
                if found is None:
                    message = f"Not found: {searched}"
                else:
                    top = found

    def _read_pattern(self, keys: _Keys, rows: int) -> str:
        """What the user types after ``/`` on the bottom line, up to Enter ("" if Escape)."""
        typed = ""
        while True:
            self._write(f"\x1b[{rows};1H\x1b[K/{typed}\x1b[?25h")
            key = keys.get(_KEY_WAIT)
            if key is None:
                continue
            if key in ("\r", "\n"):
                break
            if key == "\x1b":
                typed = ""
                break
            if key in ("\x7f", "\x08"):
                typed = typed[:-1]
            elif key.isprintable() and not key.startswith("\x1b"):
                typed += key
        self._write("\x1b[?25l")
        return typed

    def _draw(
        self,
        lines: list[str],
        top: int,
        columns: int,
        rows: int,
        search: re.Pattern[str] | None,
        message: str,
    ) -> None:
        height = max(1, rows - 1)
        shown = lines[top : top + height]
        if search is not None:
            shown = [search.sub(lambda match: f"\x1b[7m{match[0]}\x1b[27m", line) for line in shown]
        screen = [f"\x1b[{row};1H{line}\x1b[K" for row, line in enumerate(shown, 1)]
        screen += [f"\x1b[{row};1H\x1b[K" for row in range(len(shown) + 1, height + 1)]
        bottom = min(top + height, len(lines))
        where = "(END)" if bottom >= len(lines) else f"{bottom * 100 // len(lines)}%"
        status = message or f"lines {top + 1}-{bottom} of {len(lines)} {where}  {_HINT}"
        screen.append(f"\x1b[{rows};1H\x1b[7m {status[: max(0, columns - 2)]} \x1b[0m\x1b[K")
        self._write("".join(screen))


def _search_pattern(text: str) -> re.Pattern[str]:
    """A search for ``text`` as typed; case matters only if it has a capital (less -i)."""
    return re.compile(re.escape(text), 0 if text != text.lower() else re.IGNORECASE)


def _find(lines: list[str], search: re.Pattern[str], top: int, *, forward: bool) -> int | None:
    """The first line after ``top`` (or before it, backwards) where ``search`` matches."""
    candidates = range(top + 1, len(lines)) if forward else range(top - 1, -1, -1)
    return next((index for index in candidates if search.search(lines[index])), None)


def _wrap(text: str, columns: int) -> list[str]:
    """The screen lines of ``text`` on a terminal ``columns`` wide (long lines wrap)."""
    width = max(1, columns)
    screen_lines: list[str] = []
    for line in text.expandtabs().splitlines():
        printable = "".join(char for char in line if char >= " " or char == "\t")
        screen_lines.extend(
            printable[start : start + width] for start in range(0, len(printable), width)
        )
        if not printable:
            screen_lines.append("")
    return screen_lines
