"""Eval round trip and keystroke echo in one terminal session.

``N+1000000⏎`` until the result is drawn (median of 50), and one character until it is
drawn (median of 200); baseline, same run: the same against a local ``python3 -q -i``
in a PTY (the plain REPL, no network).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence

import pyte

from bench._harness import (
    Host,
    Row,
    Terminal,
    at_empty_prompt,
    keys,
    median_ms,
    shows,
    ssh_argv,
)

EVALS = 50
KEYSTROKES = 200


def _evals(terminal: Terminal, prompt: str) -> list[float]:
    samples = []
    for number in range(EVALS):
        expected = str(number + 1000000)
        started = time.perf_counter()
        terminal.child.send(f"{number}+1000000\r")
        samples.append(terminal.wait_for(shows(expected)) - started)
        terminal.wait_for(at_empty_prompt(prompt))
    return samples


def _typed_on_cursor_line(typed: str, screen: pyte.Screen) -> bool:
    return typed in screen.display[screen.cursor.y]


def _keystrokes(terminal: Terminal) -> list[float]:
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


def _session(argv: Sequence[str], prompt: str) -> tuple[list[float], list[float]]:
    terminal = Terminal(argv)
    try:
        terminal.wait_for(at_empty_prompt(prompt))
        evals = _evals(terminal, prompt)
        return evals, _keystrokes(terminal)
    finally:
        terminal.close()


def measure() -> list[Row]:
    with keys() as bench_keys:
        host = Host(bench_keys)
        try:
            argv = ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1")
            ours_eval, ours_key = _session(argv, ">>>")
        finally:
            host.close()
    base_eval, base_key = _session([sys.executable, "-q", "-i"], ">>>")
    return [
        Row(
            "eval round trip, until drawn (median of 50)",
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
