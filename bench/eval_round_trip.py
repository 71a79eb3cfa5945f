"""Eval round trip and keystroke echo in one terminal session.

``1+41⏎`` until ``42`` arrives (median of 50), and one character until it is drawn
(median of 200); baseline, same run: the same against a local ``python3 -q -i`` in a PTY
(the plain REPL, no network).

Each eval starts from a prompt that is completely drawn: ptpython draws its prompt, then
draws it again (with its status bar at the bottom of the terminal) once the terminal has
told it where the cursor is. A person never types within that millisecond; typing into
it would time the prompt's second drawing, not the statement.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Sequence

import pyte

from bench._harness import (
    Host,
    Row,
    Terminal,
    at_empty_prompt,
    keys,
    median_ms,
    ssh_argv,
)

EVALS = 50
KEYSTROKES = 200


class _Answers:
    """Counts the answers ``42`` in everything the terminal receives: one is already on
    the screen from the eval before, so the count says when a new one came. A ``42`` next
    to a digit or a slash (ptpython's history position, ``42/42``) is not an answer."""

    _ANSWER = re.compile(r"(?<![\d/])42(?![\d/])")

    def __init__(self, terminal: Terminal) -> None:
        self.received = ""
        feed = terminal.stream.feed

        def recording_feed(data: str) -> None:
            self.received += data
            feed(data)

        terminal.stream.feed = recording_feed  # type: ignore[method-assign]

    @property
    def count(self) -> int:
        return len(self._ANSWER.findall(self.received))


def _prompt_drawn(prompt: str, status_bar: str | None) -> Callable[[pyte.Screen], bool]:
    empty = at_empty_prompt(prompt)
    if status_bar is None:
        return empty
    return lambda screen: empty(screen) and any(status_bar in line for line in screen.display)


def _evals(terminal: Terminal, ready: Callable[[pyte.Screen], bool]) -> list[float]:
    answers = _Answers(terminal)
    samples = []
    for number in range(EVALS):
        started = time.perf_counter()
        terminal.child.send("1+41\r")
        samples.append(terminal.wait_for(lambda screen, n=number: answers.count > n) - started)
        terminal.wait_for(ready)
    return samples


def _typed_on_cursor_line(typed: str, screen: pyte.Screen) -> bool:
    return typed in screen.display[screen.cursor.y]


def keystrokes(terminal: Terminal) -> list[float]:
    samples = []
    for number in range(KEYSTROKES):
        char = "abcdefghij"[number % 10]
        typed = "".join("abcdefghij"[n % 10] for n in range(number % 60 + 1))
        started = time.perf_counter()
        terminal.child.send(char)
        samples.append(terminal.wait_for(functools.partial(_typed_on_cursor_line, typed)) - started)
        if number % 60 == 59:
            terminal.child.send("\x15")  # Ctrl-U: clear the line
            terminal.wait_for(lambda screen: "abc" not in screen.display[screen.cursor.y])
    return samples


def _session(
    argv: Sequence[str], prompt: str, status_bar: str | None
) -> tuple[list[float], list[float]]:
    terminal = Terminal(argv)
    ready = _prompt_drawn(prompt, status_bar)
    try:
        terminal.wait_for(ready)
        evals = _evals(terminal, ready)
        return evals, keystrokes(terminal)
    finally:
        terminal.close()


def measure() -> list[Row]:
    with keys() as bench_keys:
        host = Host(bench_keys)
        try:
            argv = ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1")
            ours_eval, ours_key = _session(argv, ">>>", "[F4]")
        finally:
            host.close()
    base_eval, base_key = _session([sys.executable, "-q", "-i"], ">>>", None)
    return [
        Row(
            "eval round trip, 1+41 until 42 (median of 50)",
            f"{median_ms(ours_eval):.1f} ms",
            f"{median_ms(base_eval):.1f} ms local python -i",
            "< 3 ms (issue 5), < 5 ms (issue 2)",
            median_ms(ours_eval) < 3,
        ),
        Row(
            "keystroke echo (median of 200)",
            f"{median_ms(ours_key):.1f} ms",
            f"{median_ms(base_key):.1f} ms local python -i",
            "< 2 ms",
            median_ms(ours_key) < 2,
        ),
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
