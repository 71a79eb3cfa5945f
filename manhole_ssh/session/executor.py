"""Running a session's code: in its own worker thread, interruptible, never in the server's loop.

Every statement of a session runs in that session's worker thread, with the session's
streams bound (see :mod:`.streams`). Ctrl-C raises :class:`KeyboardInterrupt` in that
thread; a statement blocked in C cannot be interrupted there, so after a short grace the
statement is left to finish in its old thread (the interrupt still pending) and the session
goes on in a fresh one. ``SystemExit`` ends the session, never the process. Top-level
``await`` runs on the host's asyncio loop when there is one, else on a loop of the worker's.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import ctypes
import enum
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import CodeType
from typing import Any

from ..green import originals
from ..green.real_loop import new_event_loop
from .streams import SessionStreams, bind_session_streams

__all__ = ["RESULT_NAME", "Executor", "Outcome", "OutcomeKind", "compile_statement"]

# After Ctrl-C, how long a statement gets to notice before the session moves on without it.
INTERRUPT_GRACE = 0.5

_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


class OutcomeKind(enum.Enum):
    DONE = "done"  # the job returned
    INTERRUPTED = "interrupted"  # KeyboardInterrupt (Ctrl-C) or a cancelled await
    EXIT = "exit"  # SystemExit: the session should end
    ABANDONED = "abandoned"  # blocked in C after Ctrl-C: left running in its old thread
    ERROR = "error"  # an exception the job did not handle itself


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    value: object = None
    exception: BaseException | None = None
    thread_name: str = ""


# Where a compiled statement leaves the value of its final expression (then removed).
RESULT_NAME = "__manhole_result__"


def compile_statement(source: str, filename: str, *, show_last_expression: bool) -> CodeType:
    """Compile ``source`` as one code object (top-level ``await`` allowed).

    :param show_last_expression: when the source ends with an expression statement, store
        its value in ``namespace[RESULT_NAME]`` so that it can be shown, as an interactive
        prompt does. It stays one code object, so an ``await`` earlier in the source and
        the final expression run in the same coroutine.
    :raises SyntaxError: as ``compile()`` does.
    """
    module = compile(source, filename, "exec", flags=ast.PyCF_ONLY_AST | _TOP_LEVEL_AWAIT)
    assert isinstance(module, ast.Module)
    if show_last_expression and module.body and isinstance(module.body[-1], ast.Expr):
        last = module.body[-1]
        module.body[-1] = ast.copy_location(
            ast.Assign(targets=[ast.Name(RESULT_NAME, ast.Store())], value=last.value), last
        )
        ast.fix_missing_locations(module)
    return compile(module, filename, "exec", flags=_TOP_LEVEL_AWAIT)


def _raise_in_thread(thread_id: int, exception: type[BaseException]) -> None:
    """Raise ``exception`` in that thread as soon as it runs Python code.

    Never call ``PyThreadState_SetAsyncExc`` with NULL to take one back: on CPython 3.11
    that leaves the interpreter's "async exception pending" flag set for good, so every
    thread checks for pending work on each call, and a thread being traced or profiled
    (a debugger, coverage, a profiler) spins forever at its next function call.
    """
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception)
    )


def _nothing() -> None:
    """A Python-level call: where a pending asynchronous exception is raised."""


def _absorb_pending_interrupt() -> None:
    """Take, in this thread, a KeyboardInterrupt sent as its statement ended: it was
    meant for the statement, which is over. (Not ``contextlib.suppress``: its own
    ``__enter__`` is a Python call, where the exception could be raised outside it.)"""
    try:  # noqa: SIM105
        _nothing()
    except KeyboardInterrupt:
        pass


class _Job:
    def __init__(self, function: Callable[[], object], streams: SessionStreams) -> None:
        self.function = function
        self.streams = streams
        self.future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        # While the job awaits a coroutine, how to cancel it (instead of an async exception).
        self.cancel_await: Callable[[], object] | None = None


class _Worker(originals.Thread):
    """One thread that runs a session's jobs one after another (a real OS thread, and real
    queue and lock, even in a gevent or eventlet host)."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.jobs = originals.simple_queue()
        self.state_lock = originals.allocate_lock()
        self.current: _Job | None = None
        self.retired = False  # abandoned or closed: finish the current job, then end
        self.private_loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> None:
        while not self.retired:
            try:
                job = self.jobs.get()
                if job is None:
                    break
                self._run_job(job)
            except KeyboardInterrupt:
                continue  # an interrupt that arrived as the statement ended: nothing to stop
        if self.private_loop is not None:
            self.private_loop.close()

    def _run_job(self, job: _Job) -> None:
        with self.state_lock:
            if self.retired:  # the session closed before the job began: it never runs
                job.future.set_result(Outcome(OutcomeKind.INTERRUPTED, thread_name=self.name))
                return
            self.current = job
        outcome = Outcome(OutcomeKind.ERROR, thread_name=self.name)
        try:
            with bind_session_streams(job.streams):
                value = job.function()
            outcome = Outcome(OutcomeKind.DONE, value=value, thread_name=self.name)
        except KeyboardInterrupt as error:
            outcome = Outcome(OutcomeKind.INTERRUPTED, exception=error, thread_name=self.name)
        except SystemExit as error:
            outcome = Outcome(OutcomeKind.EXIT, value=error.code, thread_name=self.name)
        except BaseException as error:
            outcome = Outcome(OutcomeKind.ERROR, exception=error, thread_name=self.name)
        finally:
            with self.state_lock:
                self.current = None  # from now on, interrupt() sends nothing to this thread
            # A Ctrl-C that raced with the end of the statement must not hit the next one.
            _absorb_pending_interrupt()
            if not job.future.done():
                job.future.set_result(outcome)

    def interrupt(self, job: _Job) -> None:
        with self.state_lock:
            if self.current is not job:
                return
            if job.cancel_await is not None:
                job.cancel_await()
            elif self.ident is not None:
                _raise_in_thread(self.ident, KeyboardInterrupt)


class Executor:
    """Runs one session's jobs in its worker thread.

    :param name: the worker threads' name (a counter is added for replacements).
    :param streams: what ``sys.stdout``/``stderr``/``stdin`` are in those threads.
    :param host_loop: the host's asyncio loop, where top-level ``await`` runs, if any.
    """

    def __init__(
        self,
        name: str,
        streams: SessionStreams,
        host_loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self._name = name
        self._streams = streams
        self._host_loop = host_loop
        self._workers: list[_Worker] = []
        self._worker = self._new_worker()
        self._job: _Job | None = None
        self._abandon_timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Future[Outcome] | None = None
        self.closed = False
        # Set by close(): the thread its statement was left running in, if one was running.
        self.left_running_in: str | None = None

    def _new_worker(self) -> _Worker:
        self._workers = [worker for worker in self._workers if worker.is_alive()]
        count = len(self._workers) + 1
        worker = _Worker(f"{self._name} #{count}" if count > 1 else self._name)
        worker.start()
        self._workers.append(worker)
        return worker

    def join(self, timeout: float) -> None:
        """Wait (after :meth:`close`) for the worker threads to end, at most ``timeout``."""
        for worker in self._workers:
            worker.join(timeout)

    @property
    def busy(self) -> bool:
        return self._job is not None

    async def run(self, function: Callable[[], object]) -> Outcome:
        """Run ``function`` in the worker thread and return how it ended."""
        if self.closed:
            raise RuntimeError("executor is closed")
        job = _Job(function, self._streams)
        self._job = job
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[Outcome] = loop.create_future()
        self._waiting = waiting

        def finished(future: concurrent.futures.Future[Outcome]) -> None:
            loop.call_soon_threadsafe(_resolve, waiting, future.result())

        job.future.add_done_callback(finished)
        self._worker.jobs.put(job)
        try:
            return await waiting
        finally:
            self._job = None
            self._waiting = None
            if self._abandon_timer is not None:
                self._abandon_timer.cancel()
                self._abandon_timer = None

    def interrupt(self) -> bool:
        """Ctrl-C: interrupt the running job (called on the server's loop); false if idle."""
        job = self._job
        if job is None:
            return False
        self._worker.interrupt(job)
        if self._abandon_timer is None:
            loop = asyncio.get_running_loop()
            self._abandon_timer = loop.call_later(INTERRUPT_GRACE, self._abandon, job)
        return True

    def _abandon(self, job: _Job) -> None:
        self._abandon_timer = None
        if self._job is not job or job.future.done() or self._waiting is None:
            return
        old = self._worker
        old.retired = True
        old.jobs.put(None)
        self._worker = self._new_worker()
        _resolve(self._waiting, Outcome(OutcomeKind.ABANDONED, thread_name=old.name))

    def still_wanted(self) -> bool:
        """False in a worker whose statement was abandoned: it must not draw on the screen."""
        worker = originals.current_thread()
        return not (isinstance(worker, _Worker) and worker.retired)

    def evaluate(self, code: CodeType, namespace: dict[str, Any]) -> object:
        """Run code from :func:`compile_statement` in the worker thread (awaiting it if it
        awaits) and return the value of its final expression, if it kept one."""
        namespace.pop(RESULT_NAME, None)
        try:
            coroutine = eval(code, namespace)
            if code.co_flags & inspect.CO_COROUTINE and inspect.iscoroutine(coroutine):
                self._await(coroutine)
            return namespace.get(RESULT_NAME)
        finally:
            namespace.pop(RESULT_NAME, None)

    def _await(self, coroutine: Coroutine[Any, Any, object]) -> object:
        worker = originals.current_thread()
        assert isinstance(worker, _Worker)
        job = worker.current
        assert job is not None
        host_loop = self._host_loop
        if host_loop is not None and host_loop.is_running() and not host_loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(coroutine, host_loop)
            job.cancel_await = future.cancel
            try:
                while True:
                    try:
                        return future.result(timeout=0.05)
                    except concurrent.futures.TimeoutError:
                        continue
            except concurrent.futures.CancelledError:
                raise KeyboardInterrupt("await cancelled") from None
            except KeyboardInterrupt:
                future.cancel()  # Ctrl-C landed before cancel_await was in place
                raise
            finally:
                job.cancel_await = None
        if worker.private_loop is None:
            worker.private_loop = new_event_loop()
        private_loop = worker.private_loop
        task = private_loop.create_task(coroutine)
        job.cancel_await = lambda: private_loop.call_soon_threadsafe(task.cancel)
        try:
            return private_loop.run_until_complete(task)
        except asyncio.CancelledError:
            raise KeyboardInterrupt("await cancelled") from None
        except KeyboardInterrupt:
            task.cancel()
            raise
        finally:
            job.cancel_await = None

    def close(self) -> None:
        """The session is over: stop the running job if any, and let the worker end."""
        if self.closed:
            return
        self.closed = True
        job, worker = self._job, self._worker
        if job is not None:
            worker.interrupt(job)
        with worker.state_lock:  # decided with the worker: a job not begun now never begins
            worker.retired = True
            if job is not None and worker.current is job:
                self.left_running_in = worker.name
        worker.jobs.put(None)


def _resolve(waiting: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not waiting.done():
        waiting.set_result(outcome)
