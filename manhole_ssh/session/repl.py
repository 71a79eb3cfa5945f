"""ptpython's user interface drawn on one SSH channel.

The input application runs on the server's loop (not in a thread of its own, as
``PythonRepl.run_async`` would do), reading a pipe that the session feeds with what the
client types, and drawing through a VT100 output that writes to the channel. Code is never
run here: :class:`Repl` only reads statements and shows results, and the results are
shown from the session's worker thread, where the ``repr`` of a host object may take its
time without freezing the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO, cast

from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.keys import Keys
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.renderer import print_formatted_text as print_formatted_text_to_output
from ptpython.printer import OutputPrinter
from ptpython.repl import PythonRepl
from ptpython.utils import unindent_code
from pygments.lexers import Python3Lexer as PythonLexer  # type: ignore[import-untyped]

from .._compat.application import (
    share_bindings_and_style,
    skip_redraws_while_exiting,
    with_default_ui_style,
)
from .._compat.filters import CombinedFilters
from .._compat.layout import speed_up
from .._compat.ptpython import CompleterNotRunningHostCode, PythonInputForManhole
from .above_prompt import AbovePrompt
from .cursor_reports import CURSOR_POSITION_REPORT, CprOutput, CursorPositionReports
from .keyfeed import MAX_PASTE_CHARACTERS, Paste, PasteLimit, PipeFeed, unread_bytes

__all__ = ["Repl"]

# Text that ends in a name (not a number) or an attribute dot: worth completing.
_COMPLETABLE_TAIL = re.compile(r"(?:^|\W)[^\W\d]\w*\.?$|[)\]]\.$")
# How long typed text that may begin a paste (ESC, ESC [ …) waits for the rest (seconds).
_PASTE_MARKER_WAIT = 0.05
# How often a paste waiting for the prompt to read what came before it is tried again.
_RETRY_PASTE = 0.005
# Past this many lines, the prompt's syntax colouring starts from a line near the part
# drawn, not from the top (see Repl._lexer).
_LEXED_FROM_THE_TOP = 500


def _fixed(value: bool, why: str) -> Any:
    """A ptpython setting that stays ``value`` even if the F2 menu sets it."""
    return property(lambda self: value, lambda self, new_value: None, doc=why)


class _NameCompleter(CompleterNotRunningHostCode):
    """ptpython's completer, completing while typing only after a name or a dot.

    ptpython also starts jedi after every digit (``1+41``): each such run is CPU taken from
    the host (and the GIL from the server's loop) for no useful completion.
    """

    def _complete_python_while_typing(self, document: Document) -> bool:
        return _COMPLETABLE_TAIL.search(document.text_before_cursor) is not None


class _OutputPrinter(OutputPrinter):
    """ptpython's result printer, merging the style once rather than for every line.

    prompt_toolkit's ``print_formatted_text()`` merges and parses every style it is given
    on each call: about 2 ms per printed result, most of a statement's round trip.
    """

    def _print_formatted_text(self, line: StyleAndTextTuples, end: str = "\n") -> None:
        print_formatted_text_to_output(
            self.output,
            [*line, ("", end)],
            with_default_ui_style(self.style),
            style_transformation=self.style_transformation,
            color_depth=self.output.get_default_color_depth(),
        )


class _ManholePythonRepl(PythonRepl, PythonInputForManhole):
    accepted = False  # Enter was pressed on a complete statement; it is about to run

    def _get_output_printer(self) -> OutputPrinter:
        return _OutputPrinter(
            output=self.app.output,
            input=self.app.input,
            style=self._current_style,
            style_transformation=self.style_transformation,
            title=self.title,
        )

    def _on_input_timeout(self, buffer: Any) -> None:
        # ptpython asks jedi for signatures after every change, even when it shows none.
        if self.show_signature or self.show_docstring:
            super()._on_input_timeout(buffer)

    def _accept_handler(self, buffer: Any) -> bool:
        self.accepted = bool(buffer.text.strip())  # a blank line runs nothing
        return bool(super()._accept_handler(buffer))

    enable_system_bindings = _fixed(False, "Ctrl-Z would stop the host process (SIGTSTP).")
    enable_open_in_editor = _fixed(False, "It would start an editor on the host's terminal.")
    enable_pager = _fixed(False, "The pager runs a second application the channel cannot host.")


class Repl:
    """ptpython reading statements from one terminal.

    :param namespace: the session's globals (completion looks names up there).
    :param stdout: where the terminal's bytes go (a text stream over the channel).
    :param term: the client's ``$TERM``.
    :param columns: initial terminal width; :param rows: initial height.
    :param pause_reading: stop reading the channel while typed keys wait for the prompt;
    :param resume_reading: read it again (see :class:`~manhole_ssh.session.keyfeed.PipeFeed`).
    :param history: the input history (the key's, see ``debug.history``).
    :param settings: F2 settings to start with (``debug.history.SETTINGS``).
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        stdout: io.TextIOBase,
        *,
        term: str,
        columns: int,
        rows: int,
        pause_reading: Callable[[], object] = lambda: None,
        resume_reading: Callable[[], object] = lambda: None,
        history: History | None = None,
        settings: Mapping[str, object] | None = None,
    ) -> None:
        self._size = Size(rows=rows or 24, columns=columns or 80)
        self._resources = contextlib.ExitStack()
        self._input: PipeInput = self._resources.enter_context(create_pipe_input())
        self._feed = PipeFeed(
            self._input.pipe.write_fd,  # type: ignore[attr-defined]
            pause_reading=pause_reading,
            resume_reading=resume_reading,
        )
        self._resources.callback(self._feed.close)  # before the pipe closes (LIFO)
        self._paste_limit = PasteLimit(answers=CURSOR_POSITION_REPORT)
        self._release_held_keys: asyncio.TimerHandle | None = None
        self._waiting: list[str | Paste] = []  # behind a paste not handed over yet
        self._retry: asyncio.TimerHandle | None = None
        self.output = CprOutput(cast(TextIO, stdout), lambda: self._size, term=term or "xterm")
        self._cursor_reports = CursorPositionReports(self.output, self._feed.send)
        self._closed = self._released = False
        self._combined_filters = CombinedFilters()
        # Read through self, so that close() lets the session's namespace go at once.
        self._namespace = namespace
        self.python = _ManholePythonRepl(
            get_globals=lambda: self._namespace,
            input=self._input,
            output=self.output,
            color_depth=self.output.get_default_color_depth(),
            _completer=_NameCompleter(
                lambda: self._namespace,
                lambda: self._namespace,
                lambda: self.python.enable_dictionary_completion,
            ),
            _lexer=self._lexer(),
        )
        self.python.confirm_exit = False  # Ctrl-D leaves at once, as in a shell
        # Completion runs jedi, on the host's CPU: only when asked (Tab), not per keystroke.
        # (F2 turns "Complete while typing" back on for a session.)
        self.python.complete_while_typing = False
        if history is not None:  # before the first prompt, which loads it
            self.python.history = history
            self.python.default_buffer.history = history
        for name, value in (settings or {}).items():
            setattr(self.python, name, value)
        app = self.python.app
        share_bindings_and_style(app)
        speed_up(app)
        skip_redraws_while_exiting(app)
        app.terminal_size_polling_interval = None  # resizes come from the channel
        self._cursor_reports.install(app)
        self._above = AbovePrompt(app, self.output, lambda: self.accepted)

    def _lexer(self) -> PygmentsLexer:
        """ptpython's Python colouring, which Pygments runs from the first line of the
        prompt to the last one drawn at every drawing: after a paste of 10,000 lines that
        was two seconds of the server's loop, every other session waiting. In a long
        prompt it starts from a line near the part drawn (prompt_toolkit's sync), at the
        price of colouring wrongly inside a string that opened far above."""
        return PygmentsLexer(
            PythonLexer,
            sync_from_start=Condition(
                lambda: self.python.default_buffer.document.line_count <= _LEXED_FROM_THE_TOP
            ),
        )

    def probe_cursor_position_reports(self) -> str:
        """The request to send once, at the start, to learn whether the client answers CPR."""
        return self._cursor_reports.probe()

    def feed(self, text: str) -> None:
        """What the client typed (called on the server's loop)."""
        text = self._cursor_reports.take_probe_answer(text)
        pieces, refused = self._paste_limit.filter(text)
        for piece in pieces:
            self._give(piece)
        if self._release_held_keys is not None:
            self._release_held_keys.cancel()
            self._release_held_keys = None
        if self._paste_limit.holding_back:  # the Escape key, or a paste cut after its ESC
            self._release_held_keys = asyncio.get_running_loop().call_later(
                _PASTE_MARKER_WAIT, self._release_held
            )
        if refused:
            self._above.tell(
                f"manhole-ssh: paste of more than {MAX_PASTE_CHARACTERS:,} characters "
                "refused (nothing of it was typed). Run a long script with: "
                "ssh -T ... < script.py"
            )

    def _release_held(self) -> None:
        self._release_held_keys = None
        self._give(self._paste_limit.release())

    def _give(self, piece: str | Paste) -> None:
        """Pass typed text or a whole paste on to the prompt, in the order they came.

        A paste that cannot be handed over yet (keys typed before it are still unread, or
        it comes between two prompts) waits, and what comes after it waits too: sent
        through the pipe instead, it cost the quadratic read described in _hand_over,
        and every paste behind it went the same slow way. It is tried again every
        _RETRY_PASTE while a prompt runs, else as the next one starts.
        """
        if not piece:
            return
        if self._waiting or (isinstance(piece, Paste) and not self._hand_over(piece)):
            self._waiting.append(piece)
            if self._retry is None and not self._closed and not self._between_prompts():
                loop = asyncio.get_running_loop()
                self._retry = loop.call_later(_RETRY_PASTE, self._give_waiting)
        elif not isinstance(piece, Paste):
            self._feed.send(piece.encode("utf-8"))

    def _between_prompts(self) -> bool:
        app = self.python.app
        return not app.is_running or app.future is None or app.future.done()

    def _prompt_started(self) -> None:
        """Called by prompt_toolkit as a prompt starts: what waited for it goes in next,
        once the prompt reads its input."""
        if self._waiting:
            asyncio.get_running_loop().call_soon(self._give_waiting)

    def _give_waiting(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        waiting, self._waiting = self._waiting, []
        for piece in waiting:
            self._give(piece)

    def _hand_over(self, paste: Paste) -> bool:
        """Give a whole paste to the prompt as one key press, if nothing typed before it
        still waits to be read; say whether it was given.

        Through the pipe, prompt_toolkit reads a paste 1 kB at a time, and each read
        copies and searches all of the paste so far for its end: 1 MB cost over a second
        of the server's loop. It is already whole here.
        """
        app = self.python.app
        context = app.context
        if (
            self._between_prompts()
            or context is None
            or self._feed.backlog
            or unread_bytes(self._input.pipe.read_fd)  # type: ignore[attr-defined]
        ):
            return False

        def paste_now() -> None:
            keys = app.key_processor
            keys.feed_multiple(self._input.flush_keys())  # an escape sequence begun before
            keys.feed(KeyPress(Keys.BracketedPaste, paste.text))
            keys.process_keys()

        context.copy().run(paste_now)
        return True

    def take_cursor_position_reports(self, text: str) -> str:
        """``text`` without the cursor-position answers the prompt waits for, fed to it
        (see :meth:`CursorPositionReports.take_waited_for`)."""
        return self._cursor_reports.take_waited_for(text)

    def resize(self, columns: int, rows: int) -> None:
        self._size = Size(rows=rows or self._size.rows, columns=columns or self._size.columns)
        app = self.python.app
        if app.is_running:
            app._on_resize()

    @property
    def accepted(self) -> bool:
        """True from the moment a statement is accepted until the next prompt: what the
        client sends then is for the statement (Ctrl-C, its stdin), not the prompt."""
        return bool(self.python.accepted)

    async def read(self) -> str | None:
        """Show the prompt and return the next statement, or ``None`` on Ctrl-D or close."""
        try:
            return await self._read()
        finally:
            if self._closed:  # the application has let go of the input: release it now
                self._release()

    async def _read(self) -> str | None:
        python = self.python
        while not self._closed:
            python.accepted = False
            try:
                with create_app_session(input=self._input, output=self.output):
                    text: str = await python.app.run_async(
                        pre_run=self._prompt_started,
                        set_exception_handler=False,
                        handle_sigint=False,
                    )
                # What comes now is for the statement (its Ctrl-C above all), even if keys
                # typed ahead still wait for the next prompt.
                self._feed.let_read()
            except EOFError:
                return None
            except KeyboardInterrupt:
                python.signatures = []
                python.default_buffer.document = Document()
                continue
            text = unindent_code(text)
            if text.lstrip().startswith("\x1a"):
                return None
            if text and not text.isspace():
                return text
        return None

    def show_result(self, result: object) -> None:
        """Draw a result as ptpython does (called in the worker thread: ``repr`` runs there)."""
        python = self.python
        python._show_result(result)
        if python.insert_blank_line_after_output:
            self.output.write("\n")
            self.output.flush()
        python.current_statement_index += 1

    def around_their_output(self, text: str, send: Callable[[str], None]) -> str:
        """Send output that is not the REPL's own above the prompt (see
        :meth:`AbovePrompt.around_their_output`); return the end of a line held back."""
        return self._above.around_their_output(text, send)

    def show_exception(self, error: BaseException) -> None:
        self.python._handle_exception(error)

    def settings(self, names: Iterable[str]) -> dict[str, object]:
        """The current value of these F2 settings."""
        return {name: getattr(self.python, name, None) for name in names}

    def show_above_prompt(self, message: str) -> bool:
        """Print ``message`` above the prompt, which is drawn again below it (on the loop);
        false when no prompt is shown (a statement runs)."""
        if self._closed or not self._above.prompt_shown():
            return False
        self._above.show(message)
        return True

    def show_message(self, message: str) -> None:
        self._above.show_message(message)

    def close(self) -> None:
        """End the REPL. A running prompt is told to exit, and the input pipe is closed once
        it has (closing it under the application breaks its clean-up)."""
        self._closed = True
        self._namespace = {}
        app = self.python.app
        if app.is_running:
            if app.future is not None and not app.future.done():
                app.exit(exception=EOFError)
            return
        self._release()

    def _release(self) -> None:
        for timer in (self._release_held_keys, self._retry):
            if timer is not None:
                timer.cancel()
        if not self._released:
            self._released = True
            self._resources.close()
            self._combined_filters.forget_new()
