"""``help`` for a session: pydoc's text, shown in the session, never through pydoc's pager.

The built-in ``help`` calls ``pydoc.help``, which pages through ``pydoc.pager``: a
process-wide pager, chosen once (then kept for the whole process) from whether
``sys.stdout`` is a terminal, that starts ``less`` writing to the host's own terminal or
log. A session's namespace gets a :class:`SessionHelp` instead, which renders pydoc's
plain text itself and shows it with the session's own pager, or writes it out when the
session has no terminal. pydoc's module state is never touched.
"""

from __future__ import annotations

import io
import pydoc
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from .._compat import has_private
from .streams import on_a_host_loop

__all__ = ["SessionHelp"]

_CONSTANTS = {"True": True, "False": False, "None": None}


class _SessionHelper(pydoc.Helper):
    """pydoc's help utility, with each answer given to ``show`` as plain text.

    pydoc (3.11, 3.12) sends some answers to its process-wide pager whatever output it was
    given: keywords, topics and symbols (``help("if")``), and ``True``/``False``/``None``.
    Those are rendered here to the output instead.
    """

    def __init__(self, show: Callable[[str], object]) -> None:
        super().__init__(input=sys.stdin, output=sys.stdout)
        self._show = show

    def help(self, request: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(request, str) and request.strip() in _CONSTANTS:
            request = _CONSTANTS[request.strip()]
        answer = io.StringIO()
        output = self._output  # type: ignore[has-type]
        self._output = answer
        try:
            super().help(request, *args, **kwargs)
        finally:
            self._output = output
        self._show(answer.getvalue())

    def showtopic(self, topic: str, more_xrefs: str = "") -> None:
        if not has_private(self, "_gettopic", "help on keywords, topics and symbols"):
            self.output.write(f"no documentation for {topic!r} in a manhole on this Python\n")
            return
        try:
            text, xrefs = self._gettopic(topic, more_xrefs)  # type: ignore[attr-defined]
        except (ValueError, KeyError):
            self.output.write(f"no documentation found for {topic!r}\n")
            return
        text = text.strip() + "\n"
        if xrefs:
            related = textwrap.wrap("Related help topics: " + ", ".join(xrefs.split()), 72)
            text += "\n" + "\n".join(related) + "\n"
        self.output.write(text)


class SessionHelp:
    """``help`` in a session's namespace (see the module's docstring).

    :param pager: shows a text on the session's terminal; ``None`` when the session has no
        terminal (exec, script), where the text is written to ``sys.stdout``. It is also
        written out on the service's event loop (a statement that awaits), which a pager
        would stop until ``q``.
    """

    def __init__(self, pager: Callable[[str], object] | None) -> None:
        self._pager = pager

    def __repr__(self) -> str:
        return "Type help() for interactive help, or help(object) for help about object."

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        _SessionHelper(self._show)(*args, **kwargs)

    def _show(self, text: str) -> None:
        if self._pager is not None and not on_a_host_loop():
            self._pager(text)
        else:
            sys.stdout.write(text)
