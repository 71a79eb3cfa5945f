"""A session's statements: each run on the session's worker thread and on record in the
audit trail (before it starts and when it ends, however it ends); and a whole program
(``ssh host 'code'``, a script on stdin) run to its exit status."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..audit import audit
from .executor import Executor, Outcome, OutcomeKind, compile_statement
from .streams import ChannelOutput
from .tracebacks import format_traceback

__all__ = ["Author", "StatementRunner", "describe_result"]


def describe_result(result: object) -> str:
    return "no result" if result is None else f"result {type(result).__name__}"


def _describe(outcome: Outcome) -> str:
    """How a statement ended, for the audit trail."""
    if outcome.kind is OutcomeKind.DONE:
        return str(outcome.value)
    if outcome.kind is OutcomeKind.EXIT:
        return f"exit {outcome.value!r}"
    if outcome.kind is OutcomeKind.ERROR and outcome.exception is not None:
        return f"exception {type(outcome.exception).__name__}"
    if outcome.kind is OutcomeKind.ABANDONED:
        return f"interrupted, still blocked in C in thread {outcome.thread_name!r}"
    return "interrupted"


@dataclass(frozen=True)
class Author:
    """Who runs the statements, as the audit trail names them."""

    session: str
    identity: str
    fingerprint: str | None
    peer: str


class StatementRunner:
    """Runs one session's statements on its executor, in its namespace.

    :param namespace: the session's globals; the session empties ``namespace`` (the
        attribute) at its end, and a program that starts after that runs in the empty one.
    :param stderr: where a program's traceback and exit message go.
    """

    def __init__(
        self,
        executor: Executor,
        namespace: dict[str, Any],
        author: Author,
        stderr: ChannelOutput,
    ) -> None:
        self.executor = executor
        self.namespace = namespace
        self._author = author
        self._stderr = stderr
        self._numbers = itertools.count(1)

    async def run_audited(self, source: str, job: Callable[[], str]) -> Outcome:
        """Run one statement in the worker thread, recorded in the audit trail before it
        starts (so that a statement that never ends, or ends the process, is on record)
        and again when it ends, however it ends."""
        number = self._audit_start(source)
        started = time.monotonic()
        try:
            outcome = await self.executor.run(job)
        except asyncio.CancelledError:  # the session ended (and closed its executor) first
            thread = self.executor.left_running_in
            how = (
                f"still running in thread {thread!r} when the session ended"
                if thread is not None
                else "not run: the session ended before it started"
            )
            self.audit_end(source, how, time.monotonic() - started, number)
            raise
        self.audit_end(source, _describe(outcome), time.monotonic() - started, number)
        return outcome

    def _audit_start(self, source: str) -> int:
        number = next(self._numbers)
        audit("statement_start", **self._statement_fields(source, number))
        return number

    def _statement_fields(self, source: str, number: int | None) -> dict[str, object]:
        """What the start and the end record of a statement both say."""
        author = self._author
        return {
            "session": author.session,
            "statement": number,
            "identity": author.identity,
            "fingerprint": author.fingerprint,
            "peer": author.peer,
            "code": source,
        }

    def audit_end(self, source: str, how: str, duration: float, number: int | None = None) -> None:
        """The end of a statement (``number``, from its ``statement_start``), or a
        statement that never started (no number: it did not compile, or was cancelled)."""
        audit(
            "statement",
            **self._statement_fields(source, number),
            outcome=how,
            duration=round(duration, 6),
        )

    async def run_program(self, source: str, filename: str, *, show_last_expression: bool) -> int:
        """Run a whole program (exec or script) and return its exit status."""
        # An exec is `python -c`, whose tracebacks show their source lines from 3.13 on;
        # a script on stdin is `python -`, whose do not.
        shown_source = source if show_last_expression else None
        try:
            compiled = compile_statement(
                source, filename, show_last_expression=show_last_expression
            )
        except SyntaxError as error:
            self.audit_end(source, "syntax error", 0.0)
            self._stderr.write(format_traceback(error, filename, shown_source))
            return 1

        def run() -> str:
            result = self.executor.evaluate(compiled, self.namespace)
            if result is not None:
                print(repr(result))
            sys.stdout.flush()
            return describe_result(result)

        outcome = await self.run_audited(source, run)
        return self._exit_status(outcome, filename, shown_source)

    def _exit_status(self, outcome: Outcome, filename: str, source: str | None) -> int:
        if outcome.kind is OutcomeKind.DONE:
            return 0
        if outcome.kind is OutcomeKind.EXIT:
            code = outcome.value
            if code is None:
                return 0
            if isinstance(code, int):
                return code & 0xFF
            self._stderr.write(f"{code}\n")
            return 1
        if outcome.kind is OutcomeKind.ABANDONED:
            self._stderr.write(
                f"KeyboardInterrupt: the code is blocked in C and goes on in thread "
                f"{outcome.thread_name!r} until it returns\n"
            )
        elif outcome.exception is not None:
            self._stderr.write(format_traceback(outcome.exception, filename, source))
        return 1
