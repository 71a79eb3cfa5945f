"""The REPL on a session's terminal: the banner, the prompt, and each statement entered
run on the session's worker thread with its outcome shown above the next prompt."""

from __future__ import annotations

import functools
import os
import socket
import sys
from types import CodeType

from ..debug.history import SETTINGS, history_for, load_settings, save_settings
from .executor import OutcomeKind, compile_statement
from .host_loop import HostLoop
from .keyfeed import ReadingGate
from .parts import SessionParts
from .repl import Repl
from .statements import describe_result
from .tracebacks import format_traceback

__all__ = ["TerminalSession"]


def _banner(identity: str, host_loop: HostLoop) -> str:
    process = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else sys.executable
    version = sys.version.split()[0]
    return (
        f"manhole-ssh: {process} (pid {os.getpid()}) on {socket.gethostname()}, "
        f"Python {version}\n"
        f"Logged in as {identity}. Code you type runs inside this live process.\n"
        "Ctrl-C interrupts a statement; Ctrl-D or exit() leaves (the process keeps running).\n"
        'threads() shows every thread\'s stack; sh("df -h") runs a command here; '
        "help(obj) pages here.\n"
        "manhole_help() lists every debugging helper (tasks, profiles, heap, watch, logs).\n"
        f"Top-level await runs on {host_loop.why}.\n\n"
    )


class TerminalSession:
    """ptpython on one session's terminal, over the session's parts.

    :param terminal: the client's ``$TERM``, columns and rows.
    :param reading: the channel's reading gate: the prompt holds it while keys wait.
    :param identity: who logged in; :param fingerprint: with which key (their history).
    """

    def __init__(
        self,
        parts: SessionParts,
        terminal: tuple[str, int, int],
        reading: ReadingGate,
        *,
        identity: str,
        fingerprint: str | None,
    ) -> None:
        self._parts = parts
        self._identity = identity
        self._fingerprint = fingerprint
        self.cancel_next_statement = False  # Ctrl-C came between Enter and the start
        term, columns, rows = terminal
        self.repl: Repl | None = Repl(
            parts.runner.namespace,
            parts.streams.stdout,
            term=term,
            columns=columns,
            rows=rows,
            pause_reading=functools.partial(reading.hold, "prompt input"),
            resume_reading=functools.partial(reading.release, "prompt input"),
            history=history_for(fingerprint),
            settings=load_settings(fingerprint),
        )

    async def run(self) -> None:
        """Until the client leaves (Ctrl-D, ``exit()``) or the session ends."""
        parts, repl = self._parts, self.repl
        assert repl is not None
        parts.debug_console.use_terminal(repl.output)
        parts.stdout.around_their_output = repl.around_their_output
        parts.stdout.write(
            _banner(self._identity, parts.host_loop) + repl.probe_cursor_position_reports()
        )
        runner = parts.runner
        while True:
            # What came in while code ran (or was about to) and was not read as its stdin
            # was typed ahead of this prompt.
            leftover = parts.stdin.take_unread()
            if leftover:
                repl.feed(leftover)
            source = await repl.read()
            if source is None:
                return
            try:
                compiled = compile_statement(source, "<stdin>", show_last_expression=True)
            except SyntaxError as error:
                # (ptpython validates input, so this is rare: e.g. validation turned off.)
                runner.audit_end(source, "syntax error", 0.0)
                repl.show_message(format_traceback(error, "<stdin>"))
                continue
            if self.cancel_next_statement:
                self.cancel_next_statement = False
                runner.audit_end(source, "interrupted before it started", 0.0)
                repl.show_message("KeyboardInterrupt")
                continue
            outcome = await runner.run_audited(
                source, functools.partial(self._run_statement, compiled)
            )
            if outcome.kind is OutcomeKind.EXIT:
                return
            if outcome.kind is OutcomeKind.INTERRUPTED:
                repl.show_message("KeyboardInterrupt")
            elif outcome.kind is OutcomeKind.ABANDONED:
                repl.show_message(
                    "KeyboardInterrupt: the statement is blocked outside Python (in C code), "
                    "where it cannot be interrupted. It goes on in thread "
                    f"{outcome.thread_name!r} with the KeyboardInterrupt pending (raised as soon "
                    "as it runs Python code again); the next statement runs in a new thread."
                )
            elif outcome.kind is OutcomeKind.ERROR and outcome.exception is not None:
                repl.show_message(format_traceback(outcome.exception, "<stdin>"))

    def _run_statement(self, compiled: CodeType) -> str:
        """In the worker thread: run one REPL statement, draw its result or traceback, and
        say how it ended."""
        runner, repl = self._parts.runner, self.repl
        executor, namespace = runner.executor, runner.namespace
        assert repl is not None  # (None once the session has ended)
        try:
            result = executor.evaluate(compiled, namespace)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            if executor.still_wanted():
                repl.show_exception(error)
            return f"exception {type(error).__name__}"
        if result is not None and executor.still_wanted():
            namespace["_"] = result
            repl.show_result(result)
        return describe_result(result)

    def close(self) -> None:
        """Keep the key's F2 settings for its next session, and close the REPL."""
        repl, self.repl = self.repl, None
        if repl is not None:
            save_settings(self._fingerprint, repl.settings(SETTINGS))
            repl.close()
