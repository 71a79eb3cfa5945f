"""pdb run by a parked host thread, talking to one session.

The thread that hit the breakpoint runs the debugger itself, so the frame's locals are
live and ``n``/``s`` step the real code. What pdb prints and reads goes through the
session: its standard streams are bound to the session's for the debugging thread only
(``streams.bind_session_streams``), and pdb is given the process's routed ``sys.stdout``
and ``sys.stdin``, so that pdb's own swap of ``sys.stdout`` around a ``!statement``
puts back the very same object and no other thread sees a change.

Lines are read with a prompt_toolkit prompt drawn on the session's terminal, on the
server's loop, with line editing and the key's history (:class:`SessionLineReader`):
a statement running in a session reads its stdin in cooked mode only (Backspace, Ctrl-U),
which is no way to debug. Without a terminal (``ssh host 'attach()'`` with piped input),
lines are read from the session's stdin as they come.

pdb's ways out that would raise ``BdbQuit`` into the host's code (``q``, ``exit``, EOF)
let the thread go on instead; ``debug`` and ``run``/``restart`` are refused (the first
starts a second pdb with the host's defaults, the others are for ``python -m pdb``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import pdb
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import Output

from ..session.streams import SessionStreams, bind_session_streams, install_routing

__all__ = ["DebugConsole", "SessionPdb"]

# Blocking waits wake this often, to notice a session that has gone.
_WAIT_SLICE = 0.05
# What the reader returns when the engineer leaves (Ctrl-C, Ctrl-D, the session ends).
DETACH = None


class DebugConsole:
    """What a session lends a debugger: its streams, and a line editor on its terminal.

    Made by the session; :meth:`use_terminal` once its terminal's output exists. The
    session routes what the client types to :meth:`feed` while :attr:`attached`.

    :param loop: the server's loop, which owns the channel.
    :param streams: the session's standard streams.
    :param history: the line history of the key that logged in (pdb commands).
    :param interrupt: interrupts the session's running statement (its ``attach()``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        streams: SessionStreams,
        *,
        session_id: str,
        identity: str,
        history: History | None = None,
        interrupt: Callable[[], object] = lambda: None,
    ) -> None:
        self.loop = loop
        self.streams = streams
        self.session_id = session_id
        self.identity = identity
        self.attached = False
        self.closed = False
        self._interrupt = interrupt
        self._history = history or InMemoryHistory()
        self._output: Output | None = None
        self._input: PipeInput | None = None
        self._resources = contextlib.ExitStack()
        self._prompt: PromptSession[str] | None = None
        self._prompt_running = False

    def use_terminal(self, output: Output) -> None:
        """Draw prompts with ``output`` (the REPL's, on the session's terminal)."""
        self._output = output

    def feed(self, text: str) -> None:
        """What the client typed while a debugger is attached (on the loop). Ctrl-C while
        the debugged code runs (no prompt) lets the thread go; at a prompt it is a key."""
        if not self._prompt_running and "\x03" in text:
            self._interrupt()
            text = text.replace("\x03", "")
        if text and self._input is not None:
            self._input.send_text(text)

    def read_line(self, prompt: str) -> str | None:
        """The next line the engineer enters, read in the debugging thread; ``None``
        when they leave (Ctrl-C, Ctrl-D, the session ends)."""
        if self._output is None:
            return self._read_cooked(prompt)
        future = asyncio.run_coroutine_threadsafe(self._prompt_once(prompt), self.loop)
        while not self.closed:
            try:
                return future.result(_WAIT_SLICE)
            except concurrent.futures.TimeoutError:
                continue
            except (KeyboardInterrupt, EOFError, concurrent.futures.CancelledError):
                return DETACH
        future.cancel()
        return DETACH

    def _read_cooked(self, prompt: str) -> str | None:
        self.streams.stdout.write(prompt)
        self.streams.stdout.flush()
        line = self.streams.stdin.readline()
        return line.rstrip("\r\n") if line and not self.closed else DETACH

    async def _prompt_once(self, prompt: str) -> str | None:
        """One prompt on the loop; ``None`` for Ctrl-C or Ctrl-D. (A KeyboardInterrupt
        must not leave this coroutine: asyncio re-raises it out of the loop, which would
        stop the manhole.)"""
        if self._prompt is None:
            assert self._output is not None
            self._input = self._resources.enter_context(create_pipe_input())
            self._prompt = PromptSession(
                input=self._input, output=self._output, history=self._history
            )
        self._prompt_running = True
        try:
            text: str = await self._prompt.prompt_async(
                prompt, handle_sigint=False, set_exception_handler=False
            )
            return text
        except (KeyboardInterrupt, EOFError):
            return DETACH
        finally:
            self._prompt_running = False

    def close(self) -> None:
        """The session is ending: a waiting debugger lets its thread go (on the loop)."""
        self.closed = True
        if self._prompt is not None and self._prompt.app.is_running:
            self._prompt.app.exit(exception=EOFError)
        self._resources.close()


class _PromptCatcher:
    """The debugging thread's stdout: passes text to the session, but keeps back pdb's
    prompt, which the line editor draws itself."""

    def __init__(self, target: Any, prompts: Callable[[], tuple[str, ...]]) -> None:
        self._target = target
        self._prompts = prompts
        self.pending_prompt = ""

    def write(self, text: str) -> int:
        if text in self._prompts():
            self.pending_prompt = text
            return len(text)
        self.pending_prompt = ""
        return int(self._target.write(text))

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return bool(self._target.isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _LineInput:
    """The debugging thread's stdin: each line read with the console's line editor."""

    def __init__(self, debugger: SessionPdb) -> None:
        self._debugger = debugger

    def readline(self, size: int = -1) -> str:
        return self._debugger.read_command_line()

    def read(self, size: int = -1) -> str:
        return self.readline()

    def isatty(self) -> bool:
        return True

    encoding = "utf-8"


@contextlib.contextmanager
def _readline_left_alone() -> Iterator[None]:
    """pdb's constructor imports ``readline`` and sets its completer delimiters, for the
    whole process. Keep the host's delimiters; and where the host has not imported
    ``readline``, do not import it for them (that would turn on GNU readline for the
    host's own ``input()``): the import fails for the moment pdb is built."""
    if "readline" not in sys.modules:
        sys.modules["readline"] = None  # type: ignore[assignment]
        try:
            yield
        finally:
            if "readline" in sys.modules and sys.modules["readline"] is None:
                del sys.modules["readline"]
        return
    module = sys.modules["readline"]
    delimiters = module.get_completer_delims() if module is not None else None
    try:
        yield
    finally:
        if module is not None and delimiters is not None:
            module.set_completer_delims(delimiters)


class SessionPdb(pdb.Pdb):
    """pdb for one attach: started in the parked thread, over one session's console.

    :param console: the session's :class:`DebugConsole`.
    :param on_end: called once when the thread goes on without the debugger, with
        ``True`` if the engineer let it go (a detach, Ctrl-C, the session gone), ``False``
        after ``c`` with no breakpoints left.
    """

    def __init__(self, console: DebugConsole, on_end: Callable[[bool], object]) -> None:
        install_routing()
        with _readline_left_alone():
            super().__init__(stdin=sys.stdin, stdout=sys.stdout, nosigint=True, readrc=False)
        self.console = console
        self._on_end = on_end
        self._ended = False
        self._lock = threading.Lock()
        self._detach_requested = False
        self._interacting = False
        self._stdout = _PromptCatcher(console.streams.stdout, self._prompts)
        self._streams = SessionStreams(
            stdout=self._stdout,  # type: ignore[arg-type]
            stderr=console.streams.stderr,
            stdin=_LineInput(self),  # type: ignore[arg-type]
        )

    def _prompts(self) -> tuple[str, ...]:
        return (self.prompt, "...   ")

    def start(self, frame: FrameType) -> None:
        """Stop ``frame`` at its next line, in the calling thread (the parked one)."""
        self.console.attached = True
        self.set_trace(frame)

    def read_command_line(self) -> str:
        prompt = self._stdout.pending_prompt or self.prompt
        self._stdout.pending_prompt = ""
        if self._detach_requested:
            return "detach\n"
        line = self.console.read_line(prompt)
        return "detach\n" if line is DETACH else line + "\n"

    def request_detach(self) -> None:
        """Let the thread go, from another thread: at once if it is at a prompt (its next
        read is ``detach``), else at its next trace event. (Never ``set_quit()``: that
        raises ``BdbQuit`` into the host's code.)"""
        with self._lock:
            self._detach_requested = True
            if not self._interacting:
                self.quitting = True  # trace_dispatch returns at once from now on
                self._end(let_go=True)

    def trace_dispatch(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self.quitting:  # let go while the code ran: untraced from here on
            sys.settrace(None)  # (called in the debugged thread: that thread only)
            return None
        return super().trace_dispatch(frame, event, arg)

    # Every stop of the debugger: the thread's streams go to the session meanwhile.

    def _stopped(self, method: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self._detach_requested:
                return
            self._interacting = True
        try:
            with bind_session_streams(self._streams):
                method(*args)
        finally:
            with self._lock:
                self._interacting = False

    def user_call(self, frame: FrameType, argument_list: Any) -> None:
        self._stopped(super().user_call, frame, argument_list)

    def user_line(self, frame: FrameType) -> None:
        self._stopped(super().user_line, frame)

    def user_return(self, frame: FrameType, return_value: Any) -> None:
        self._stopped(super().user_return, frame, return_value)

    def user_exception(self, frame: FrameType, exc_info: Any) -> None:
        self._stopped(super().user_exception, frame, exc_info)

    def user_opcode(self, frame: FrameType) -> None:
        # 3.13+: set_trace() stops at the next instruction, through this.
        self._stopped(super().user_opcode, frame)  # type: ignore[misc]

    def set_continue(self) -> None:
        super().set_continue()
        if not self.breaks:
            self._end(let_go=False)

    def _end(self, *, let_go: bool) -> None:
        if not self._ended:
            self._ended = True
            self.console.attached = False
            self._on_end(let_go)

    # pdb commands that must not do in a host what they do in a script.

    def do_detach(self, arg: str) -> bool:
        """detach
        Let the thread go on without the debugger (as do q, exit, Ctrl-C and Ctrl-D)."""
        self.clear_all_breaks()
        self._end(let_go=True)
        self.set_continue()
        return True

    def default(self, line: str) -> Any:
        if line.strip() == "detach()":
            return self.do_detach("")
        return super().default(line)

    do_q = do_quit = do_exit = do_EOF = do_detach

    def do_debug(self, arg: str) -> None:
        self.error("debug is not available in a manhole: step into the call with s instead")

    def do_run(self, arg: str) -> None:
        self.error("run/restart restart a script under python -m pdb: not in a live process")

    do_restart = do_run
