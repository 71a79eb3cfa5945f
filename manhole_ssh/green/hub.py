"""Sessions in a green host (gevent, eventlet): call into the host's hub, and see its greenlets.

A statement runs in the session's worker, a real OS thread (see :mod:`.originals`). The host's
greenlets live in another thread, its hub's. Most of gevent's and eventlet's objects
(greenlets, their events, queues, pools, sockets in use by a greenlet) belong to the hub
that made them and must not be touched from another thread: :func:`in_hub` runs a function
in a new greenlet of the host's hub and waits for its result.

Nothing here imports gevent, eventlet or greenlet unless the host already did.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from . import originals

__all__ = ["format_greenlets", "in_hub"]

T = TypeVar("T")

# How often a waiting in_hub() wakes up, so that Ctrl-C reaches the statement.
_WAIT_SLICE = 0.05

_hubs: dict[str, weakref.ref[Any]] = {}


def in_hub(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``function(*args, **kwargs)`` in a new greenlet of the host's hub and return what
    it returns (or raise what it raises). For gevent and eventlet hosts.

    Use it for anything that belongs to the host's greenlets: ``greenlet.kill()``,
    ``event.set()``, putting into a gevent or eventlet queue, ``pool.spawn()``, a
    ``gevent.sleep()`` that should let the host's greenlets run, or sockets the host's
    greenlets use. Plain reads of the host's data need no ``in_hub``.

    It waits as long as the function runs, which is only once the hub gets control: while
    the host's hub is stuck (the reason one opens a manhole), ``in_hub`` waits too. Ctrl-C
    stops the wait and kills the greenlet.
    """
    library = originals.green_library()
    if library is None:
        raise RuntimeError("in_hub() is for gevent and eventlet hosts; this one patched neither")
    done = originals.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:
            outcome["error"] = error
        finally:
            done.set()

    spawned = _spawn_in_gevent_hub(run) if library == "gevent" else _spawn_in_eventlet_hub(run)
    try:
        while not done.wait(_WAIT_SLICE):
            pass
    except KeyboardInterrupt:
        spawned.kill()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _Spawned:
    """The greenlet ``in_hub`` started (once the hub has started it), and how to kill it
    from another thread."""

    def __init__(self, schedule: Callable[[Callable[[], None]], None]) -> None:
        self.greenlet: Any = None
        self.killed = False
        self._schedule = schedule

    def kill(self) -> None:
        self.killed = True
        spawned = self.greenlet
        if spawned is not None:
            # gevent's kill() waits for the greenlet to die unless told not to; eventlet's
            # schedules the exception and returns.
            block = {"block": False} if "gevent" in type(spawned).__module__ else {}
            self._schedule(lambda: spawned.kill(**block))


def _main_hub(library: str, hub_class: type) -> Any:
    """The host's hub: gevent's in the main thread, eventlet's that is running outside the
    calling thread. Found once (a scan of the objects the garbage collector tracks)."""
    known = _hubs.get(library)
    hub = known() if known is not None else None
    if hub is not None and _usable(library, hub):
        return hub
    for candidate in gc.get_objects():
        if isinstance(candidate, hub_class) and _usable(library, candidate):
            _hubs[library] = weakref.ref(candidate)
            return candidate
    raise RuntimeError(f"no {library} hub runs in this process's main thread yet")


def _usable(library: str, hub: Any) -> bool:
    if library == "gevent":
        return bool(hub.main_hub) and not hub.dead
    import greenlet

    hub_greenlet = getattr(hub, "greenlet", None)
    return bool(hub.running) and (
        hub_greenlet is None or hub_greenlet.parent is not greenlet.getcurrent()
    )


def _spawn_in_gevent_hub(run: Callable[[], None]) -> _Spawned:
    gevent = sys.modules["gevent"]
    hub = _main_hub("gevent", sys.modules["gevent.hub"].Hub)
    spawned = _Spawned(lambda callback: hub.loop.run_callback_threadsafe(callback))

    def start() -> None:  # in the hub
        if not spawned.killed:
            spawned.greenlet = gevent.spawn(run)

    hub.loop.run_callback_threadsafe(start)
    return spawned


def _spawn_in_eventlet_hub(run: Callable[[], None]) -> _Spawned:
    """eventlet has no thread-safe call into a hub. A one-shot pipe is registered with the
    host's hub (a dictionary insertion and an ``epoll_ctl``, which the hub's loop does not
    iterate over), then written to: the hub wakes at once and spawns ``run``."""
    eventlet = sys.modules["eventlet"]
    hub = _main_hub("eventlet", sys.modules["eventlet.hubs.hub"].BaseHub)

    def schedule(callback: Callable[[], None]) -> None:
        read_end, write_end = os.pipe()
        listener: Any = None

        def readable(_descriptor: int) -> None:  # in the hub
            hub.remove(listener)
            os.close(read_end)
            os.close(write_end)
            callback()

        listener = hub.add(hub.READ, read_end, readable, _ignore, _ignore)
        os.write(write_end, b"x")

    spawned = _Spawned(schedule)

    def start() -> None:
        if not spawned.killed:
            spawned.greenlet = eventlet.spawn(run)

    schedule(start)
    return spawned


def _ignore(*_args: object) -> None:
    """A throwback or close callback the one-shot pipe needs none of."""


def format_greenlets(limit: int | None = 20) -> str:
    """The stacks of the process's waiting greenlets, those with the same stack counted
    together, most common first (``limit`` stacks at most; ``None``: all). Empty if no
    green library is loaded. A greenlet that is running shows in its thread's stack."""
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return ""
    groups: dict[tuple[tuple[str, int, str], ...], list[Any]] = {}
    frames: dict[tuple[tuple[str, int, str], ...], Any] = {}
    for candidate in gc.get_objects():
        if not isinstance(candidate, greenlet.greenlet):
            continue
        frame = candidate.gr_frame
        if frame is None:  # running in some thread, not started, or finished
            continue
        key = tuple(
            (summary.filename, summary.lineno or 0, summary.name)
            for summary in traceback.extract_stack(frame)
        )
        groups.setdefault(key, []).append(candidate)
        frames.setdefault(key, frame)
    if not groups:
        return ""
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    total = sum(len(members) for members in groups.values())
    lines = [f"Greenlets waiting: {total}, in {len(groups)} different stacks"]
    for key, members in ordered[:limit]:
        names = ", ".join(_describe(member) for member in members[:3])
        more = f", and {len(members) - 3} more" if len(members) > 3 else ""
        count = f"{len(members)} greenlets" if len(members) > 1 else "1 greenlet"
        lines.append(f"{count} ({names}{more}):")
        lines.append("".join(traceback.format_stack(frames[key])).rstrip())
        lines.append("")
    hidden = ordered[limit:] if limit is not None else []
    if hidden:
        rest = sum(len(members) for _, members in hidden)
        lines.append(
            f"... {len(hidden)} more stacks ({rest} greenlets): threads(limit=None) shows all"
        )
    return "\n".join(lines).rstrip() + "\n"


def _describe(member: Any) -> str:
    name = getattr(member, "name", None)
    text = name if isinstance(name, str) and name else type(member).__name__
    return text[:40]
