"""One SSH session channel: a REPL on a terminal, one command, or a script on stdin.

- PTY shell (``ssh -p 2222 host``): a banner, then ptpython; each statement runs in the
  session's worker thread.
- exec (``ssh -p 2222 host 'len(cache)'``): runs the code once; a final expression's
  ``repr`` is printed; a traceback goes to stderr; exit status 0, or 1 on an exception.
- shell without a PTY (``ssh -T -p 2222 host < script.py``): standard input is read to the
  end and run as a script, with the same exit status rules.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from .executor import Executor
from .input_router import InputRouter
from .keyfeed import ReadingGate
from .parts import SessionParts, build_session_parts
from .recording import Recording
from .repl import Repl
from .resize import ResizeCoalescer, clamped_size
from .session_events import SessionEvents
from .statements import StatementRunner
from .streams import ChannelOutput
from .terminal import TerminalSession
from .timeouts import SessionTimeouts

__all__ = ["ManholeSession", "SessionContext"]

log = logging.getLogger("manhole_ssh.session")

_session_numbers = itertools.count(1)


@dataclass(frozen=True)
class SessionContext:
    """What a session needs from the server that accepted it."""

    identity: str
    peer: str
    host_locals: Mapping[str, Any]
    host_loop: asyncio.AbstractEventLoop | None
    live_sessions: set[ManholeSession]  # the server's registry, for a clean stop
    pty_allowed: bool = True  # false for a key with no-pty or restrict
    forced_command: str | None = None  # a key's command="…": the only code it may run
    on_end: Callable[[], object] | None = None  # called once the session has ended
    idle_timeout: float | None = None  # end after this long with no input and nothing running
    session_timeout: float | None = None  # end after this long, whatever happens
    recordings: Path | None = None  # record terminal sessions there (asciicast v2)
    fingerprint: str | None = None  # of the key that logged in, for the audit trail


def refuse_env_requests(
    channel: asyncssh.SSHServerChannel[bytes], refused: Callable[[bytes], object]
) -> None:
    """Answer every ``env`` request on ``channel`` with a failure, calling ``refused``
    with the variable's name.

    asyncssh accepts them all and keeps them on the channel (8,000 requests of 30 KB held
    245 MB); they would never reach ``os.environ`` anyway, and no feature reads them.
    asyncssh has no option for it: the channel's own handler is replaced, on this channel
    only, and only if asyncssh still dispatches requests to it (otherwise the session does
    not start: see :func:`check_env_refusal_here`).
    """

    def refuse(packet: Any) -> bool:
        name = packet.get_string()
        packet.get_string()  # the value, dropped
        packet.check_end()
        refused(name)
        return False

    channel._process_env_request = refuse  # type: ignore[method-assign]


def check_env_refusal_here() -> None:
    """Raise unless asyncssh still handles ``env`` requests in the method replaced above."""
    if not callable(getattr(asyncssh.SSHServerChannel, "_process_env_request", None)):
        raise RuntimeError(
            "this asyncssh has no SSHServerChannel._process_env_request: manhole-ssh cannot "
            "refuse env requests with it; install an asyncssh version manhole-ssh supports"
        )


check_env_refusal_here()


def what_to_run(
    session_id: str, context: SessionContext, terminal: bool, command: str | None
) -> tuple[str, str | None]:
    """The session's mode (``pty``, ``exec`` or ``script``) and the command it runs: its
    key's ``command="…"`` if it has one, whatever the client asked."""
    forced = context.forced_command
    if forced is not None:
        if command not in (None, forced):
            log.info(
                "session %s: %s asked to run %r; its key runs only its command=",
                session_id,
                context.identity,
                command,
            )
        command = forced
    if command is not None:
        return "exec", command
    return ("pty" if terminal else "script"), None


class ManholeSession(asyncssh.SSHServerSession[bytes]):
    """Dispatches one channel to the REPL, an exec, or a script."""

    def __init__(self, context: SessionContext) -> None:
        self._context = context
        self.session_id = f"s{next(_session_numbers)}"
        self._events = SessionEvents(
            self.session_id, context.identity, context.peer, context.fingerprint
        )
        self._channel: asyncssh.SSHServerChannel[bytes] | None = None
        self._terminal: tuple[str, int, int] | None = None  # term, columns, rows
        self._command: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stdout: ChannelOutput | None = None
        self._stderr: ChannelOutput | None = None
        self._executor: Executor | None = None
        self._runner: StatementRunner | None = None  # runs statements; holds the namespace
        self._input: InputRouter | None = None  # made when the session starts
        self._started = time.monotonic()
        self._mode = "pty"
        self._parts: SessionParts | None = None  # built when the session starts
        self._terminal_session: TerminalSession | None = None  # the REPL's, on a terminal
        self._finished = False
        self._timeouts = SessionTimeouts(
            context.idle_timeout,
            context.session_timeout,
            busy=lambda: self._executor is not None and self._executor.busy,
            expire=self._expire,
        )
        self._recording: Recording | None = None
        self._refusal: str | None = None  # why the session may not run, told to the client
        self._sent_status: int | None = None  # the exit status sent to the client
        self._end_reason: str | None = None  # why the server ended it, or the client left
        self._requests_closed = False  # shell/exec has started: no more pty-req
        self._resizes = ResizeCoalescer(self._resize)
        self._reading: ReadingGate | None = None

    # asyncssh callbacks, all on the server's loop.

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._channel = chan
        self._reading = ReadingGate(chan.pause_reading, chan.resume_reading)
        refuse_env_requests(chan, self._events.env_refused)

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Mapping[int, int]
    ) -> bool:
        if not self._context.pty_allowed:
            log.info("session %s: terminal refused (no-pty or restrict)", self.session_id)
            return False
        if self._requests_closed:  # sshd refuses it too: the session's kind is settled
            log.info("session %s: terminal requested after the start: refused", self.session_id)
            return False
        columns, rows = clamped_size(term_size[0], term_size[1])
        self._terminal = (term_type, columns, rows)
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        log.info("session %s: subsystem %r refused", self.session_id, subsystem)
        return False

    def session_started(self) -> None:
        # Everything data_received() needs is set up now: input may arrive before the task runs.
        assert self._channel is not None
        self._requests_closed = True
        if self._finished:  # ended by the server (stop, revocation) before its request came
            log.info("session %s: request after the session was ended: ignored", self.session_id)
            return
        self._mode, self._command = what_to_run(
            self.session_id, self._context, self._terminal is not None, self._command
        )
        try:
            self._setup_streams(self._channel)
        except Exception as error:  # e.g. no thread can be started: refuse this session only
            log.exception("session %s could not start", self.session_id)
            self._channel.write_stderr(f"manhole-ssh: session could not start: {error}\n".encode())
            self._channel.exit(1)
            return
        self._context.live_sessions.add(self)
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._timeouts.check()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._timeouts.touch()
        try:
            if self._input is not None:
                self._input.route(data)
        except Exception:
            # asyncssh would log this at DEBUG only: a lost Ctrl-C must not go unnoticed.
            log.exception("session %s: handling input failed", self.session_id)

    def eof_received(self) -> bool:
        if self._input is not None:
            self._input.eof()
        return True  # keep sending output after the client's EOF

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self._resizes.request(width, height)

    def _resize(self, width: int, height: int) -> None:
        if self._terminal is not None:
            self._terminal = (self._terminal[0], width, height)
        if self._recording is not None:
            self._recording.resize(width, height)
        if self._repl is not None:
            self._repl.resize(width, height)

    def break_received(self, msec: int) -> bool:
        self._interrupt()
        return True

    def signal_received(self, signal: str) -> None:
        if signal == "INT":
            self._interrupt()

    def pause_writing(self) -> None:
        for output in (self._stdout, self._stderr):
            if output is not None:
                output.pause()

    def resume_writing(self) -> None:
        for output in (self._stdout, self._stderr):
            if output is not None:
                output.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._end_reason is None and not self._finished:
            self._end_reason = f"client left ({exc})" if exc is not None else "client left"
        self._context.live_sessions.discard(self)
        if self._parts is not None:
            self._parts.close_streams()
        if self._executor is not None and self._executor.busy:
            log.info(
                "session %s (%s): client left mid-statement; the statement is interrupted",
                self.session_id,
                self._context.identity,
            )
        self._shutdown()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._context.on_end is not None:
            self._context.on_end()

    # The session itself.

    async def _run(self) -> None:
        mode = self._mode
        recording = self._recording
        self._events.started(mode, str(recording.path) if recording is not None else None)
        status = 0
        try:
            if self._refusal is not None:
                assert self._stdout is not None
                self._stdout.write(self._refusal)
                status = 1
            elif mode == "pty":
                await self._interactive()
            elif mode == "exec":
                assert self._command is not None
                status = await self._runner_or_fail().run_program(
                    self._command, "<manhole>", show_last_expression=True
                )
            else:
                status = await self._run_script()
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("session %s failed", self.session_id)
            status = 1
        finally:
            duration = time.monotonic() - self._started
            if self._sent_status is not None:  # the server ended it (stop, revoked, timeout)
                status = self._sent_status
            self._events.ended(mode, duration, status, self._end_reason or "done")
        self._finish(status)

    def _setup_streams(self, channel: asyncssh.SSHServerChannel[bytes]) -> None:
        parts = build_session_parts(
            channel,
            self._context,
            self.session_id,
            self._terminal,
            interrupt=self._interrupt,
            terminal_size=self._terminal_size,
        )
        self._stdout, self._stderr = parts.stdout, parts.stderr
        self._recording, self._refusal = parts.recording, parts.refusal
        self._parts, self._runner = parts, parts.runner
        self._executor = parts.runner.executor
        assert self._reading is not None  # made in connection_made()
        self._input = InputRouter(
            parts,
            self._reading,
            terminal=self._terminal is not None,
            script=self._mode == "script",
            interrupt=self._interrupt,
            fail=self._fail,
            finished=lambda: self._finished,
        )

    @property
    def _repl(self) -> Repl | None:
        """The REPL at the terminal's prompt, while there is one."""
        return self._input.repl if self._input is not None else None

    def _terminal_size(self) -> tuple[int, int]:
        """The client's terminal's ``(columns, rows)``, as last told."""
        _, columns, rows = self._terminal or ("", 80, 24)
        return columns or 80, rows or 24

    async def _interactive(self) -> None:
        assert self._terminal is not None and self._reading is not None
        assert self._parts is not None
        terminal = TerminalSession(
            self._parts,
            self._terminal,
            self._reading,
            identity=self._context.identity,
            fingerprint=self._context.fingerprint,
        )
        assert self._input is not None
        self._terminal_session, self._input.repl = terminal, terminal.repl
        await terminal.run()

    async def _run_script(self) -> int:
        assert self._input is not None
        source = await self._input.read_script()
        return await self._runner_or_fail().run_program(
            source, "<stdin>", show_last_expression=False
        )

    def _runner_or_fail(self) -> StatementRunner:
        assert self._runner is not None  # made in session_started(), before _run()
        return self._runner

    def _interrupt(self) -> None:
        if self._executor is not None and self._executor.interrupt():
            log.info("session %s: interrupt", self.session_id)
        elif self._terminal_session is not None and self._repl is not None and self._repl.accepted:
            self._terminal_session.cancel_next_statement = True

    def _expire(self, reason: str) -> None:
        log.info("session %s (%s) ended: %s", self.session_id, self._context.identity, reason)
        self.announce(f"manhole-ssh: session ended: {reason}.")
        self._end_reason = self._end_reason or reason
        self._finish(1)

    def announce(self, message: str) -> None:
        """Tell the client something (the manhole is stopping), on stderr or the terminal.
        Nothing once the session has finished: its channel is closed for sending, though
        the session stays on the server's books until the client answers the close."""
        if self._stderr is not None and not self._finished:
            self._stderr.write(f"\n{message}\n")

    def notify(self, message: str) -> None:
        """Tell the client something while the session goes on (a breakpoint waits):
        above the REPL's prompt, or on stderr."""
        if self._finished:
            return
        if self._repl is not None and self._repl.show_above_prompt(message):
            return
        self.announce(message)

    def end(self, message: str) -> None:
        """End this session from the server's side (stop, revocation), saying why: after
        the REPL has drawn its last, so that the message stays on the screen."""
        self._shutdown()
        self.announce(message)
        self._end_reason = self._end_reason or f"ended by the server: {message}"
        self._finish(255)

    @property
    def finished(self) -> bool:
        """The session has ended (its close may not be answered yet)."""
        return self._finished

    @property
    def executor(self) -> Executor | None:
        return self._executor

    def _fail(self, message: str) -> None:
        if self._stderr is not None:
            self._stderr.write(message)
        self._end_reason = self._end_reason or message.strip()
        self._finish(1)

    def _finish(self, status: int) -> None:
        self._shutdown()
        channel = self._channel
        if channel is None or self._finished:
            return
        self._finished = True
        self._sent_status = status
        self._timeouts.close()
        self._resizes.close()
        if self._input is not None:
            self._input.close()
        for output in (self._stdout, self._stderr):
            if output is not None:
                output.drain()
        try:
            channel.exit(status)
        except OSError:
            channel.close()

    def _shutdown(self) -> None:
        if self._terminal_session is not None:
            self._terminal_session.close()
        if self._input is not None:
            self._input.repl = None
        if self._parts is not None:
            self._parts.stop_running()
