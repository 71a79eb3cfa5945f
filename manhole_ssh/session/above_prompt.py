"""Output that is not the prompt's own (a task printing, a breakpoint's notice, a refused
paste) drawn above the prompt, which is drawn again below it, as prompt_toolkit's
``patch_stdout`` does, rather than into it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.output.vt100 import Vt100_Output

__all__ = ["AbovePrompt"]


class AbovePrompt:
    """Writes above one prompt, on the server's loop.

    :param app: the prompt's application.
    :param output: its output.
    :param accepted: whether a statement has been accepted (no prompt is shown then).
    """

    def __init__(
        self, app: Application[Any], output: Vt100_Output, accepted: Callable[[], bool]
    ) -> None:
        self._app = app
        self._output = output
        self._accepted = accepted

    def prompt_shown(self) -> bool:
        """A prompt is shown, reading what is typed."""
        app = self._app
        return app.is_running and not self._accepted()

    def around_their_output(self, text: str, send: Callable[[str], None]) -> str:
        """Send output that is not the REPL's own (a task an earlier statement started,
        printing while the prompt shows) above the prompt, not into it: whole lines only,
        with the prompt erased first and drawn again below, as prompt_toolkit's
        ``patch_stdout`` does; return the end of a line not finished yet, held back
        (called on the server's loop)."""
        app = self._app
        if not self.prompt_shown() or app.future is None or app.future.done():
            send(text)
            return ""
        lines, newline, unfinished = text.rpartition("\n")
        if newline:
            app.renderer.erase()
            send(lines + newline)
            # Where the prompt now starts: until the answer, ptpython leaves out its
            # status bar (the answer comes as input, as at every prompt).
            app.renderer.request_absolute_cursor_position()
            app.invalidate()
        return unfinished

    def show(self, message: str) -> None:
        """Print ``message`` above the prompt shown, as output of other threads is."""

        def send(text: str) -> None:
            self._output.write_raw(text)
            self._output.flush()

        self.around_their_output(message.rstrip("\n") + "\n", send)

    def tell(self, message: str) -> None:
        """Show a message above the prompt, which is drawn again below it; if no prompt
        runs, where the next one will be drawn."""
        app = self._app
        if not app.is_running:
            self.show_message(message)
            return
        app.renderer.erase()
        self._output.write(message + "\n")
        self._output.flush()
        app._on_resize()  # draw the prompt again, below the message

    def show_message(self, message: str) -> None:
        """Write ``message`` and a blank line, where the cursor is."""
        self._output.write(message.rstrip("\n") + "\n\n")
        self._output.flush()
