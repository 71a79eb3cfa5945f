"""``debug(thread)``: stop a running thread at its next line and debug it in the session.

On Python 3.12 and later, with ``sys.monitoring``: LINE events are turned on only for
the code objects on the thread's stack (so the rest of the host runs untouched), under a
tool id of our own, taken from the free ones and given back as soon as the thread has
stopped (or the wait is over). Other threads running the same functions pay one call per
line meanwhile. The thread stops at the next line it runs in one of those functions: a
thread blocked in C (a ``sleep``, a lock) stops when the call returns.

On Python 3.11 there is no way to set a trace function on another running thread short of
writing into the interpreter's thread state with ctypes: ``debug()`` says so and refuses.
"""

from __future__ import annotations

import sys
import threading
from types import CodeType, FrameType
from typing import Any

from ..green import originals
from ..session.namespace import MANHOLE_THREAD_PREFIX
from .breakpoints import attach, registry, set_trace

__all__ = ["debug"]

_TOOL_NAME = "manhole-ssh debug()"


def debug(console: Any, thread: threading.Thread | int | str, timeout: float = 30.0) -> None:
    """Stop ``thread`` (a Thread, its ident or its name) at its next line and open pdb on
    it in this session; ``timeout``: how long to wait for it to run a line."""
    ident = _ident_of(thread)
    if _is_manhole_thread(ident):
        raise ValueError(
            f"{thread!r} is one of the manhole's own threads: stopping it would stop the "
            "sessions, this one included"
        )
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        raise RuntimeError(
            "debug(thread) needs Python 3.12 or later (sys.monitoring); on "
            f"{sys.version.split()[0]}, call manhole_ssh.set_trace() in the thread's code"
        )
    if ident == threading.get_ident():
        raise ValueError("debug() cannot stop the session's own thread")
    frame = sys._current_frames().get(ident)
    if frame is None:
        raise LookupError(f"no running thread {thread!r}")
    tool = _free_tool_id(monitoring)
    codes = _codes_on_stack(frame)
    stopped = threading.Event()
    numbers_before = set(registry.waiting)

    def on_line(code: CodeType, line: int) -> Any:
        if threading.get_ident() != ident or stopped.is_set():
            return None
        stopped.set()
        _release(monitoring, tool, codes)
        set_trace(frame=sys._getframe(1), timeout=timeout)
        return None

    monitoring.use_tool_id(tool, _TOOL_NAME)
    try:
        monitoring.register_callback(tool, monitoring.events.LINE, on_line)
        for code in codes:
            monitoring.set_local_events(tool, code, monitoring.events.LINE)
        if not stopped.wait(timeout):
            raise TimeoutError(f"thread {thread!r} ran no Python line in {timeout:g} s")
    finally:
        _release(monitoring, tool, codes)
    number = _new_breakpoint(numbers_before, ident, timeout)
    attach(console, number)


def _new_breakpoint(before: set[int], ident: int, timeout: float) -> int:
    """The number of the breakpoint the stopped thread registered."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for number, entry in list(registry.waiting.items()):
            if number not in before and entry.thread_ident == ident:
                return number
        time.sleep(0.01)
    raise TimeoutError("the thread stopped but did not wait for the debugger")


def _release(monitoring: Any, tool: int, codes: list[CodeType]) -> None:
    if monitoring.get_tool(tool) != _TOOL_NAME:
        return
    for code in codes:
        monitoring.set_local_events(tool, code, 0)
    monitoring.register_callback(tool, monitoring.events.LINE, None)
    monitoring.free_tool_id(tool)


def _free_tool_id(monitoring: Any) -> int:
    # 0-5 are the tool ids; 0 (debugger), 1 (coverage), 2 (profiler) are by convention
    # those of other tools: look from the top.
    for tool in (5, 4, 3):
        if monitoring.get_tool(tool) is None:
            return tool
    raise RuntimeError("every sys.monitoring tool id 3-5 is in use: debug() cannot run now")


def _codes_on_stack(frame: FrameType | None) -> list[CodeType]:
    codes: list[CodeType] = []
    while frame is not None:
        if frame.f_code not in codes:
            codes.append(frame.f_code)
        frame = frame.f_back
    return codes


def _known_threads() -> list[threading.Thread]:
    """Every thread: ``threading``'s, and the manhole's real ones in a green host."""
    return [*threading.enumerate(), *originals.real_threads()]


def _is_manhole_thread(ident: int) -> bool:
    return any(
        thread.ident == ident and thread.name.startswith(MANHOLE_THREAD_PREFIX)
        for thread in _known_threads()
    )


def _ident_of(thread: threading.Thread | int | str) -> int:
    if isinstance(thread, threading.Thread):
        if thread.ident is None:
            raise LookupError(f"{thread!r} has not started")
        return thread.ident
    if isinstance(thread, int):
        return thread
    for candidate in _known_threads():
        if candidate.name == thread and candidate.ident is not None:
            return candidate.ident
    raise LookupError(f"no thread named {thread!r}")
