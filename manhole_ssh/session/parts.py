"""What a session is made of, built in one place and handed to it: its streams on the
channel, its recording, its namespace, its debugger console, its worker thread and the
runner of its statements (as prompt_toolkit's ``Application`` takes its input, output
and layout, rather than making them)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from ..debug import session_helpers
from ..debug.history import history_for
from ..debug.pdb_session import DebugConsole
from .executor import Executor
from .host_loop import HostLoop, choose_host_loop
from .namespace import MANHOLE_THREAD_PREFIX, make_namespace
from .namespace_release import release_namespace
from .pager import TerminalPager
from .recording import Recording
from .statements import Author, StatementRunner
from .streams import ChannelInput, ChannelOutput, SessionStreams, SessionTextStream, unsent_bytes

if TYPE_CHECKING:
    from .channel import SessionContext

__all__ = ["SessionParts", "build_session_parts"]

log = logging.getLogger("manhole_ssh.session")


@dataclass(frozen=True)
class SessionParts:
    """A session's collaborators. ``refusal``: why the session may not run (told to the
    client), ``None`` if it may."""

    stdout: ChannelOutput
    stderr: ChannelOutput
    stdin: ChannelInput
    streams: SessionStreams
    recording: Recording | None
    refusal: str | None
    debug_console: DebugConsole
    host_loop: HostLoop
    runner: StatementRunner

    def stop_running(self) -> None:
        """Stop the worker and let go of what the session ran: the REPL its output was
        drawn around, and its namespace, freed now, not at the host's next garbage
        collection (unless a statement still runs in it)."""
        self.stdout.around_their_output = None  # holds the REPL
        executor = self.runner.executor
        busy = executor.busy
        executor.close()
        namespace, self.runner.namespace = self.runner.namespace, {}
        if namespace and not busy:
            release_namespace(namespace)

    def close_streams(self) -> None:
        """The client has gone: close the debugger's console, the output streams and the
        recording; what reads standard input sees its end."""
        self.debug_console.close()
        for stream in (self.stdout, self.stderr):
            stream.close()
        if self.recording is not None:
            self.recording.close()
        self.stdin.feed_eof()


def build_session_parts(
    channel: asyncssh.SSHServerChannel[bytes],
    context: SessionContext,
    session_id: str,
    terminal: tuple[str, int, int] | None,
    *,
    interrupt: Callable[[], None],
    terminal_size: Callable[[], tuple[int, int]],
) -> SessionParts:
    """Make a session's parts on ``channel`` (on the loop; ``terminal``: its term, columns
    and rows if it has one). :raises Exception: a part could not be made (no thread)."""
    loop = asyncio.get_running_loop()
    tty = terminal is not None
    send: Callable[[bytes], object] = channel.write
    recording, refusal = None, None
    if terminal is not None and context.recordings is not None:
        term, columns, rows = terminal
        try:
            recording = Recording.start(
                context.recordings, session_id, context.identity, term, columns, rows
            )
        except OSError as error:  # recording was asked for: no session without it
            log.error("session %s refused: cannot record it: %s", session_id, error)
            refusal = f"manhole-ssh: this session cannot be recorded ({error})\n"
        else:
            send = recording.tee(send)
    queued = functools.partial(unsent_bytes, channel.get_extra_info("connection"))
    stdout = ChannelOutput(loop, send, pty=tty, queued_bytes=queued)
    stderr = (
        stdout if tty else ChannelOutput(loop, channel.write_stderr, pty=False, queued_bytes=queued)
    )
    stdin = ChannelInput(
        loop, pause_reading=channel.pause_reading, resume_reading=channel.resume_reading, tty=tty
    )
    streams = SessionStreams(
        stdout=SessionTextStream(stdout, name="<manhole stdout>", tty=tty),
        stderr=SessionTextStream(stderr, name="<manhole stderr>", tty=tty),
        stdin=stdin,
    )
    pager = TerminalPager(stdout.write, stdin, terminal_size) if tty else None
    namespace = make_namespace(context.host_locals, context.host_loop, pager=pager)
    debug_console = DebugConsole(
        loop,
        streams,
        session_id=session_id,
        identity=context.identity,
        history=history_for(context.fingerprint, "pdb") if tty else None,
        interrupt=interrupt,
    )
    namespace.update(session_helpers(debug_console))
    host_loop = choose_host_loop(context.host_loop)
    executor = Executor(
        f"{MANHOLE_THREAD_PREFIX} worker {session_id} ({context.identity})",
        streams,
        host_loop.loop,
    )
    author = Author(session_id, context.identity, context.fingerprint, context.peer)
    return SessionParts(
        stdout=stdout,
        stderr=stderr,
        stdin=stdin,
        streams=streams,
        recording=recording,
        refusal=refusal,
        debug_console=debug_console,
        host_loop=host_loop,
        runner=StatementRunner(executor, namespace, author, stderr),
    )
