"""Which asyncio loop a session's top-level ``await`` runs on, and why.

``install()`` called from a running loop takes that loop. Called before the service starts
its loop (``install()`` then ``asyncio.run(main())``), it has none: then, when a session
starts, the service's loop is looked for in the threads' stacks (a thread whose stack runs
asyncio's ``run_forever``), which changes nothing in the host. ``manhole.set_loop(loop)``
names it outright, for a loop that cannot be found that way (uvloop's ``run_forever`` is C
code; several threads running loops). Without any, ``await`` runs on a private loop of the
session, and the banner says so.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple

from .namespace import MANHOLE_THREAD_PREFIX

if TYPE_CHECKING:
    import asyncio

__all__ = ["HostLoop", "choose_host_loop", "running_loops"]


class HostLoop(NamedTuple):
    """The loop where ``await`` runs (None: a private one of the session), and why."""

    loop: asyncio.AbstractEventLoop | None
    why: str


def choose_host_loop(given: asyncio.AbstractEventLoop | None) -> HostLoop:
    """The loop given to ``install()`` or ``set_loop()`` while it is open; else the one the
    service runs, found in its threads' stacks; else none."""
    if given is not None and not given.is_closed():
        return HostLoop(given, "the service's asyncio loop (given to install() or set_loop())")
    running = running_loops()
    main = threading.main_thread().ident
    if len(running) == 1 or main in running:
        thread_id, loop = (main, running[main]) if main in running else next(iter(running.items()))
        return HostLoop(loop, f"the service's asyncio loop (running in thread {_name(thread_id)})")
    if running:
        names = ", ".join(_name(thread_id) for thread_id in running)
        return HostLoop(
            None,
            f"a private loop of this session: loops run in threads {names}, and none was "
            "named; call manhole.set_loop(loop) to choose one",
        )
    closed = " (the loop given to install() is closed)" if given is not None else ""
    return HostLoop(
        None,
        f"a private loop of this session: no asyncio loop of the service is running{closed}; "
        "a loop started later is found by the next session, or name it with "
        "manhole.set_loop(loop)",
    )


def running_loops() -> dict[int, asyncio.AbstractEventLoop]:
    """Thread id -> the asyncio loop its stack runs, for the host's threads."""
    asyncio_module = sys.modules.get("asyncio")
    if asyncio_module is None:
        return {}
    ours = {
        thread.ident
        for thread in threading.enumerate()
        if thread.name.startswith(MANHOLE_THREAD_PREFIX)
    }
    loops: dict[int, asyncio.AbstractEventLoop] = {}
    for thread_id, top in sys._current_frames().items():
        if thread_id in ours:
            continue
        frame: FrameType | None = top
        while frame is not None:
            code = frame.f_code
            if code.co_name == "run_forever" and code.co_filename.endswith("base_events.py"):
                loop = frame.f_locals.get("self")
                if isinstance(loop, asyncio_module.AbstractEventLoop) and loop.is_running():
                    loops[thread_id] = loop
                break
            frame = frame.f_back
    return loops


def _name(thread_id: int | None) -> str:
    for thread in threading.enumerate():
        if thread.ident == thread_id:
            return thread.name
    return str(thread_id)
