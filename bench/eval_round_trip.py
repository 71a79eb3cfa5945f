"""Eval round trip and keystroke echo in one terminal session.

``1+41⏎`` until ``42`` arrives (median of 50), and one character until it is drawn
(median of 200). Baselines, same run: the same through OpenSSH's sshd (a private one on
loopback, see bench/_sshd.py) running ptpython, the REPL the manhole draws, with its
defaults (``ssh -tt host python -m ptpython``); and a local ``python3 -q -i`` in a PTY
(the plain REPL, no network). The figures are the manhole's as a ratio to sshd + ptpython.
The three REPLs take turns (see :func:`_in_turns`): the manhole, the plain REPL, ptpython.

Each eval starts from a prompt that is completely drawn: ptpython draws its prompt, then
draws it again (with its status bar at the bottom of the terminal) once the terminal has
told it where the cursor is. A person never types within that millisecond; typing into
it would time the prompt's second drawing, not the statement.
"""

from __future__ import annotations

import functools
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

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
from bench._sshd import NOT_INSTALLED, private_sshd

EVALS = 50
KEYSTROKES = 200
ROUNDS = 2


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


class _Repl:
    """One REPL in a terminal, measured a block of samples at a time."""

    def __init__(self, argv: Sequence[str], prompt: str, status_bar: str | None) -> None:
        self.terminal = Terminal(argv)
        self.ready = _prompt_drawn(prompt, status_bar)
        self.evals: list[float] = []
        self.keystrokes: list[float] = []
        self.terminal.wait_for(self.ready)
        self._answers = _Answers(self.terminal)
        self._line = ""

    def eval_once(self) -> None:
        terminal, answered_before = self.terminal, len(self.evals)
        started = time.perf_counter()
        terminal.child.send("1+41\r")
        answered = terminal.wait_for(lambda screen: self._answers.count > answered_before)
        self.evals.append(answered - started)
        terminal.wait_for(self.ready)

    def keystroke(self) -> None:
        char = "abcdefghij"[len(self._line) % 10]
        self._line += char
        started = time.perf_counter()
        self.terminal.child.send(char)
        drawn = self.terminal.wait_for(functools.partial(_typed_on_cursor_line, self._line))
        self.keystrokes.append(drawn - started)
        if len(self._line) == 60:
            self.clear_line()

    def clear_line(self) -> None:
        if self._line:
            self.terminal.child.send("\x15")  # Ctrl-U
            self.terminal.wait_for(lambda screen: "abc" not in screen.display[screen.cursor.y])
            self._line = ""


def _typed_on_cursor_line(typed: str, screen: pyte.Screen) -> bool:
    return typed in screen.display[screen.cursor.y]


def _in_turns(repls: Sequence[_Repl]) -> None:
    """Each REPL in turn, a block of evals then of keystrokes, ROUNDS times: a change in
    the machine's load weighs on all of them alike, and what one does in the background
    after its samples (ptpython completes while typing, in a thread) mostly falls on the
    next one's block of the plain REPL."""
    for _ in range(ROUNDS):
        for repl in repls:
            for _ in range(EVALS // ROUNDS):
                repl.eval_once()
            for _ in range(KEYSTROKES // ROUNDS):
                repl.keystroke()
            repl.clear_line()


def _ptpython_under_sshd(port: int, client_key: Path, history: Path) -> list[str]:
    """ptpython as a user would start it over ssh: its defaults, no configuration file of
    this machine's (``--config-file /dev/null``), its history in a file of its own."""
    command = shlex.join(
        [sys.executable, "-m", "ptpython", "--config-file", "/dev/null", "--history-file"]
    )
    return ssh_argv(port, client_key, "-tt", "127.0.0.1", f"{command} {shlex.quote(str(history))}")


def _cell(ours: list[float], sshd: list[float] | None) -> str:
    if sshd is None:
        return f"{median_ms(ours):.1f} ms"
    return f"{median_ms(ours):.1f} ms ({median_ms(ours) / median_ms(sshd):.2f}x sshd + ptpython)"


def _baseline(sshd: list[float] | None, local: list[float]) -> str:
    through_sshd = NOT_INSTALLED if sshd is None else f"{median_ms(sshd):.1f} ms sshd + ptpython"
    return f"{through_sshd}; {median_ms(local):.1f} ms local python -i"


def _met(ours: list[float], sshd: list[float] | None, below_ms: float, ratio: float) -> bool:
    fast = median_ms(ours) < below_ms
    return fast if sshd is None else fast and median_ms(ours) <= ratio * median_ms(sshd)


def measure() -> list[Row]:
    sshd_eval: list[float] | None = None
    sshd_key: list[float] | None = None
    repls: list[_Repl] = []
    with keys() as bench_keys, private_sshd(bench_keys.authorized_keys) as sshd:
        host = Host(bench_keys)
        try:
            argv = ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1")
            ours = _Repl(argv, ">>>", "[F4]")
            repls.append(ours)
            local = _Repl([sys.executable, "-q", "-i"], ">>>", None)
            repls.append(local)
            if sshd is not None:
                history = bench_keys.client_key.with_name("ptpython-history")
                theirs = _ptpython_under_sshd(sshd.port, bench_keys.client_key, history)
                repls.append(_Repl(theirs, ">>>", "[F4]"))
            _in_turns(repls)
        finally:
            for repl in repls:
                repl.terminal.close()
            host.close()
    if sshd is not None:
        sshd_eval, sshd_key = repls[2].evals, repls[2].keystrokes
    ours_eval, ours_key = ours.evals, ours.keystrokes
    base_eval, base_key = local.evals, local.keystrokes
    return [
        Row(
            "eval round trip, 1+41 until 42 (median of 50)",
            _cell(ours_eval, sshd_eval),
            _baseline(sshd_eval, base_eval),
            "< 3 ms (issue 5); <= 0.6x sshd + ptpython (issue 11)",
            _met(ours_eval, sshd_eval, 3, 0.6),
        ),
        Row(
            "keystroke echo (median of 200)",
            _cell(ours_key, sshd_key),
            _baseline(sshd_key, base_key),
            "< 2 ms; <= 0.4x sshd + ptpython (issue 11)",
            _met(ours_key, sshd_key, 2, 0.4),
        ),
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
