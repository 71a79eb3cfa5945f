"""The terminal's answers to "where is the cursor?" (``ESC [ 6 n``, CPR): asked only once
the client has proved it answers, taken out of what it types, and handed to the prompt
that waits for them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.renderer import CPR_Support

__all__ = ["CURSOR_POSITION_REPORT", "CprOutput", "CursorPositionReports"]

# The answer of a terminal to "where is the cursor?" (ESC [ 6 n).
CURSOR_POSITION_REPORT = re.compile(r"\x1b\[\d+;\d+R")
_ASK_CURSOR_POSITION = "\x1b[6n"


class CprOutput(Vt100_Output):
    """VT100 output whose CPR support is what the client proved, not what a tty implies.

    prompt_toolkit waits up to a second for each unanswered cursor-position request, so
    requests are only made once the client has answered one (see
    :meth:`CursorPositionReports.take_probe_answer`).
    """

    cpr_answered = False

    @property
    def responds_to_cpr(self) -> bool:
        return self.cpr_answered


class CursorPositionReports:
    """One prompt's cursor-position requests and their answers.

    :param output: the prompt's output, told once the client has answered.
    :param send: hands bytes to the prompt's input (the answers it waits for).
    """

    def __init__(self, output: CprOutput, send: Callable[[bytes], object]) -> None:
        self._output = output
        self._send = send
        self._probe_pending = False
        self._app: Application[Any] | None = None
        self._ask_cursor_position: Callable[[], None] = lambda: None

    def install(self, app: Application[Any]) -> None:
        """Make ``app``'s renderer ask through :meth:`_request` (this app only)."""
        self._app = app
        self._ask_cursor_position = app.renderer.request_absolute_cursor_position
        app.renderer.request_absolute_cursor_position = self._request  # type: ignore[method-assign]

    def _request(self) -> None:
        """Ask where the prompt starts, as prompt_toolkit does at each prompt, but draw it
        whole before the answer comes, as if the answer gave it no more room than it needs.

        Until an answer comes, ptpython leaves out its status bar (to avoid a flicker), and
        the answer brought a second drawing, complete: every prompt was drawn twice. Once
        the screen has filled, as it has after a few statements, the prompt never has more
        room than it needs, and the answer changes nothing. When it does give more room (a
        fresh or cleared screen), the prompt is drawn again, taller.
        """
        assert self._app is not None
        renderer = self._app.renderer
        if self._output.cpr_answered and renderer._min_available_height == 0:
            renderer._min_available_height = 1  # the least an answer can say: its own row
        self._ask_cursor_position()

    def probe(self) -> str:
        """The request to send once, at the start, to learn whether the client answers CPR."""
        self._probe_pending = True
        return _ASK_CURSOR_POSITION

    def take_probe_answer(self, text: str) -> str:
        """``text`` without the answer to the probe, if it is there; the prompt then asks
        for the cursor's position from now on, and is drawn again knowing it."""
        if not self._probe_pending:
            return text
        answer = CURSOR_POSITION_REPORT.search(text)
        if answer is None:
            return text
        self._probe_pending = False
        self._output.cpr_answered = True
        app = self._app
        if app is not None:
            app.renderer.cpr_support = CPR_Support.SUPPORTED
            if app.is_running:
                app._on_resize()  # redraw, now knowing the room below the prompt
        return text[: answer.start()] + text[answer.end() :]

    def take_waited_for(self, text: str) -> str:
        """Feed the prompt the cursor-position answers in ``text`` that it is waiting for,
        and return the rest.

        Once Enter is pressed, what the client sends is for the statement; but the
        prompt, drawn again just before (on a resize, or when the client first answered),
        may still be waiting for the answer to its last ``ESC[6n``, and would wait a
        second for it, holding up the statement: typing (or pasting) as soon as the
        first prompt appeared did that.
        """
        if self._app is None or not self._app.renderer.waiting_for_cpr:
            return text
        answers = CURSOR_POSITION_REPORT.findall(text)
        if answers:
            self._send("".join(answers).encode("ascii"))
            text = CURSOR_POSITION_REPORT.sub("", text)
        return text
