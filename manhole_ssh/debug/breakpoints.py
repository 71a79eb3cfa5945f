"""Breakpoints that wait for an engineer: ``manhole_ssh.set_trace()`` parks the calling
thread until someone attaches a debugger from a session, or a timeout passes.

A production process must never hang on a forgotten breakpoint, so:

- a breakpoint waits at most ``breakpoint_timeout`` seconds (install option, 300 by
  default), then its thread goes on;
- one location (file and line) has at most one thread waiting; a hot loop's other
  calls go on at once, and after a breakpoint there timed out or was let go (Ctrl-C,
  ``detach``), the location stays quiet for ``breakpoint_timeout`` seconds. (``c`` in
  pdb lets the next call park again: that is how one follows a loop);
- at most :data:`MAX_WAITING` threads wait at once, anywhere;
- with no manhole running in the process, a breakpoint logs a warning and returns.

A coroutine awaits :func:`set_trace_async`: the coroutine waits for an engineer as
an ``await`` (its loop goes on with other tasks), and the debugger is then started on
the coroutine's frame in the loop's thread. While pdb is attached the loop is stopped
at that line, as pdb stops any code: that is what stepping through a coroutine is.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..audit import audit, report_event
from ..green import originals
from ..session.namespace import MANHOLE_THREAD_PREFIX

__all__ = [
    "MAX_WAITING",
    "Breakpoint",
    "BreakpointList",
    "attach",
    "breakpoints",
    "detach",
    "set_trace",
    "set_trace_async",
]

log = logging.getLogger("manhole_ssh.breakpoints")

MAX_WAITING = 16  # threads parked at once; more breakpoints go on at once
_LOCALS_SHOWN = 6  # local names listed per breakpoint
_WAIT_SLICE = 0.05  # parked threads and attaching sessions wake this often
_WORKER_PREFIX = f"{MANHOLE_THREAD_PREFIX} worker"  # a session's statements: may park
_UNATTENDED_LOG_INTERVAL = 60.0  # with no manhole, a line's breakpoint logs this seldom


class Breakpoint:
    """One thread (or coroutine) waiting at a breakpoint, then debugged."""

    def __init__(self, number: int, frame: FrameType, thread: threading.Thread | None) -> None:
        self.number = number
        self.frame: FrameType | None = frame
        self.filename = frame.f_code.co_filename
        self.lineno = frame.f_lineno
        self.function = frame.f_code.co_name
        self.thread_name = thread.name if thread is not None else "?"
        self.thread_ident = thread.ident if thread is not None else None
        self.since = time.time()
        self.local_names = list(frame.f_locals)[:_LOCALS_SHOWN]
        self.task: str | None = None  # the asyncio task awaiting it (set_trace_async)
        self.attached_by: str | None = None  # session id of the engineer attached
        self._console: Any = None  # the session's DebugConsole, once one attached
        self._attached = originals.new_event()
        self._finished = originals.new_event()
        self.debugger: Any = None
        self.how = ""  # how the debugging ended, for the session that attached

    @property
    def location(self) -> tuple[str, int]:
        return self.filename, self.lineno

    def describe(self) -> dict[str, object]:
        return {
            "id": self.number,
            "thread": self.thread_name,
            "task": self.task,
            "file": self.filename,
            "line": self.lineno,
            "function": self.function,
            "since": round(self.since, 3),
            "waiting_s": round(time.time() - self.since, 1),
            "locals": self.local_names,
            "attached_by": self.attached_by,
        }

    def __repr__(self) -> str:
        waited = time.time() - self.since
        state = f"debugged by {self.attached_by}" if self.attached_by else "waiting"
        shown = ", ".join(self.local_names)
        task = f"task {self.task!r} in " if self.task is not None else ""
        return (
            f"[{self.number}] {task}thread {self.thread_name!r} at {self.filename}:{self.lineno} "
            f"in {self.function}(), {state} for {waited:.0f} s; locals: {shown}"
        )


class BreakpointList(list[Breakpoint]):
    """What :func:`breakpoints` returns: prints as a table, ``.json()`` for scripts."""

    def __repr__(self) -> str:
        if not self:
            return "No thread is waiting at a breakpoint."
        return "\n".join(repr(entry) for entry in self)

    def json(self) -> list[dict[str, object]]:
        return [entry.describe() for entry in self]


class _Registry:
    """The breakpoints of this process: who waits, and which locations are quiet."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = originals.allocate_lock()
        self._clock = clock
        self._numbers = itertools.count(1)
        self.waiting: dict[int, Breakpoint] = {}  # by number, waiting or being debugged
        self._quiet_until: dict[tuple[str, int], float] = {}

    def park(
        self, frame: FrameType, thread: Callable[[], threading.Thread | None]
    ) -> Breakpoint | str:
        """Register a breakpoint at ``frame``, or say why it goes on at once."""
        location = (frame.f_code.co_filename, frame.f_lineno)
        now = self._clock()
        with self._lock:
            if any(entry.location == location for entry in self.waiting.values()):
                return "another thread waits at this line"
            if self._quiet_until.get(location, 0.0) > now:
                return "this line was let go recently"
            if len(self.waiting) >= MAX_WAITING:
                return f"{MAX_WAITING} breakpoints wait already"
            entry = Breakpoint(next(self._numbers), frame, thread())
            self.waiting[entry.number] = entry
            return entry

    def quiet(self, frame: FrameType, interval: float) -> bool:
        """True once per ``interval`` per location: whether to speak of it now."""
        location = (frame.f_code.co_filename, frame.f_lineno)
        now = self._clock()
        with self._lock:
            if self._quiet_until.get(location, 0.0) > now:
                return False
            self._quiet_until[location] = now + interval
            return True

    def release(self, entry: Breakpoint, quiet_for: float | None) -> None:
        with self._lock:
            self.waiting.pop(entry.number, None)
            if quiet_for is not None:
                self._quiet_until[entry.location] = self._clock() + quiet_for
            now = self._clock()
            for location in [loc for loc, until in self._quiet_until.items() if until <= now]:
                del self._quiet_until[location]

    def claim(self, number: int | None, session_id: str) -> Breakpoint:
        """Mark one waiting breakpoint as taken by ``session_id`` (oldest if ``None``)."""
        with self._lock:
            free = [entry for entry in self.waiting.values() if entry.attached_by is None]
            if number is None:
                if not free:
                    raise LookupError("no thread is waiting at a breakpoint")
                entry = min(free, key=lambda candidate: candidate.number)
            else:
                found = self.waiting.get(number)
                if found is None:
                    raise LookupError(f"no breakpoint {number}: see breakpoints()")
                if found.attached_by is not None:
                    raise LookupError(f"breakpoint {number} is debugged by {found.attached_by}")
                entry = found
            entry.attached_by = session_id
            return entry

    def listed(self) -> BreakpointList:
        with self._lock:
            return BreakpointList(sorted(self.waiting.values(), key=lambda entry: entry.number))


registry = _Registry()


def _manhole() -> Any:
    """The running manhole of this process, or ``None``."""
    from ..manhole import installed

    return installed()


def set_trace(*, frame: FrameType | None = None, timeout: float | None = None) -> None:
    """Park the calling thread until an engineer attaches from a session (``attach()``),
    then debug it there with pdb; go on after ``timeout`` seconds (by default the
    manhole's ``breakpoint_timeout``) with no one attached. Returns at once, logging
    why, with no manhole running, or when this line already has a thread waiting."""
    frame = frame if frame is not None else sys._getframe(1)
    entry, wait = _register(frame, timeout)
    if entry is None:
        return
    _wait_and_debug(entry, wait, frame)


async def set_trace_async(*, timeout: float | None = None, frame: FrameType | None = None) -> None:
    """Await an engineer without blocking the loop, then debug the awaiting coroutine.

    The wait is an ``await`` (other tasks run); once someone attaches, pdb starts on
    the coroutine's frame in the loop's thread and stops at the line after the await.
    """
    frame = frame if frame is not None else sys._getframe(1)
    task = asyncio.current_task()
    entry, wait = _register(frame, timeout, task.get_name() if task is not None else None)
    if entry is None:
        return
    deadline = time.monotonic() + wait
    try:
        while not entry._attached.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(_WAIT_SLICE)
    except BaseException:  # cancelled while it waited: no longer waiting
        _abandon(entry)
        raise
    _wait_and_debug(entry, 0.0, frame)


def _register(
    frame: FrameType, timeout: float | None, task: str | None = None
) -> tuple[Breakpoint | None, float]:
    manhole = _manhole()
    if manhole is None:
        if registry.quiet(frame, _UNATTENDED_LOG_INTERVAL):
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            log.warning("breakpoint at %s: no manhole runs in this process: going on", where)
        return None, 0.0
    name = originals.current_thread().name
    if name.startswith(MANHOLE_THREAD_PREFIX) and not name.startswith(_WORKER_PREFIX):
        # The server's own thread (or its executor's): parking it would stop every session.
        log.warning("breakpoint in the manhole's thread %r: going on", name)
        return None, 0.0
    wait = manhole.config.breakpoint_timeout if timeout is None else timeout
    parked = registry.park(frame, originals.current_thread)
    if isinstance(parked, str):  # (the common case in a hot loop: kept cheap)
        return None, 0.0
    parked.task = task
    where = f"{parked.filename}:{parked.lineno}"
    waiter = f"task {task!r} in thread" if task is not None else "thread"
    audit(
        "breakpoint",
        breakpoint_id=parked.number,
        thread=parked.thread_name,
        task=task,
        file=parked.filename,
        line=parked.lineno,
        function=parked.function,
        timeout=wait,
    )
    manhole.announce(
        f"manhole-ssh: breakpoint [{parked.number}] waits in {waiter} {parked.thread_name!r} "
        f"at {where} (up to {wait:g} s): attach({parked.number}) to debug it"
    )
    return parked, wait


def _wait_and_debug(entry: Breakpoint, wait: float, frame: FrameType) -> None:
    """In the breakpoint's thread: wait for an engineer, then start pdb on ``frame``."""
    if wait > 0:
        try:
            entry._attached.wait(wait)
        except BaseException:  # interrupted while it waited (a session's own thread)
            _abandon(entry)
            raise
    with registry._lock:
        timed_out = entry.attached_by is None
        if timed_out:
            entry.attached_by = "(timed out)"
    if timed_out:
        registry.release(entry, quiet_for=_quiet_interval())
        report_event(
            log,
            logging.INFO,
            "breakpoint_timeout",
            "breakpoint [%d] at %s:%d: nobody came",
            entry.number,
            *entry.location,
            breakpoint_id=entry.number,
            file=entry.filename,
        )
    else:
        entry._attached.wait()  # claimed: the console follows at once
    if entry._console is None:  # timed out, or let go with detach()
        entry.frame = None
        entry._finished.set()
        return
    from .pdb_session import SessionPdb

    def ended(let_go: bool) -> None:
        entry.how = "detached: the thread goes on" if let_go else "the thread went on"
        registry.release(entry, quiet_for=_quiet_interval() if let_go else None)
        entry.frame = None
        entry._finished.set()

    try:
        entry.debugger = SessionPdb(entry._console, on_end=ended)
        entry.debugger.start(frame)
    except Exception:  # the host's code goes on whatever happens to the debugger
        log.exception("breakpoint [%d]: the debugger could not start", entry.number)
        ended(True)


def _abandon(entry: Breakpoint) -> None:
    """The waiting thread or task was interrupted: take its breakpoint off the list (an
    engineer attaching at that moment finds it gone)."""
    with registry._lock:
        entry.attached_by = entry.attached_by or "(interrupted)"
    registry.release(entry, quiet_for=None)
    entry.frame = None
    entry._finished.set()


def _quiet_interval() -> float:
    manhole = _manhole()
    return float(manhole.config.breakpoint_timeout) if manhole is not None else 300.0


def _thread_alive(ident: int | None) -> bool:
    return ident is None or ident in sys._current_frames()


# In a session (each session binds these to its own console, see session_helpers).


def breakpoints() -> BreakpointList:
    """The threads waiting at a breakpoint (and those being debugged), oldest first."""
    return registry.listed()


def attach(console: Any, number: int | None = None) -> None:
    """Debug breakpoint ``number`` (the oldest waiting if ``None``) in this session, until
    ``c``, ``detach``/``q`` or Ctrl-C lets the thread go on."""
    entry = registry.claim(number, console.session_id)
    audit(
        "breakpoint_attach",
        breakpoint_id=entry.number,
        session=console.session_id,
        identity=console.identity,
        file=entry.filename,
        line=entry.lineno,
    )
    entry._console = console
    console.attached = True
    entry._attached.set()
    how = ""
    try:
        while not entry._finished.wait(_WAIT_SLICE):
            if not _thread_alive(entry.thread_ident):
                how = "the thread ended"
                registry.release(entry, quiet_for=None)
                break
    except KeyboardInterrupt:
        _let_go(entry)
    finally:
        console.attached = False
        how = how or entry.how or "detached: the thread goes on"
        audit("breakpoint_detach", breakpoint_id=entry.number, session=console.session_id, how=how)
    print(f"breakpoint [{entry.number}]: {how}")


def _let_go(entry: Breakpoint) -> None:
    """Let a breakpoint's thread go on, whatever state it is in."""
    debugger = entry.debugger
    if debugger is not None:
        debugger.request_detach()
    else:
        entry.attached_by = entry.attached_by or "(let go)"
        registry.release(entry, quiet_for=_quiet_interval())
        entry._attached.set()  # it wakes, finds no console, and goes on
    entry._finished.wait(1.0)


def detach(number: int | None = None) -> str:
    """Let breakpoint ``number`` (the oldest if ``None``) go on without a debugger; its
    line stays quiet for ``breakpoint_timeout``."""
    listed = registry.listed()
    if not listed:
        return "No thread is waiting at a breakpoint."
    entry = listed[0] if number is None else next((e for e in listed if e.number == number), None)
    if entry is None:
        return f"No breakpoint {number}: see breakpoints()"
    if entry.debugger is not None:
        entry.debugger.request_detach()
    else:
        with registry._lock:
            claimed = entry.attached_by is None
            if claimed:
                entry.attached_by = "(let go)"
        if not claimed:
            return f"breakpoint [{entry.number}] is being attached by {entry.attached_by}"
        registry.release(entry, quiet_for=_quiet_interval())
        entry._attached.set()
    audit("breakpoint_detach", breakpoint_id=entry.number, how="let go")
    return f"breakpoint [{entry.number}] goes on"
