"""``watch()``: report, as they happen, each stall of the host's event loop and each long
full garbage collection, until Ctrl-C.

While someone watches, a watchdog thread per loop (``manhole-ssh watchdog``) puts a no-op
callback on the loop with ``call_soon_threadsafe`` every ``loop_ms`` and waits for it to
run; when it is late, the loop's thread is blocked, and its stack is read at once with
``sys._current_frames()``. A callback in ``gc.callbacks`` times full collections: it is
added when ``watch()`` starts and removed when it ends, so only while someone watches is
it visible to the process (``gc.callbacks`` lists it). When nobody watches, nothing runs.
Every event also goes to the audit trail (event ``watch``).
"""

from __future__ import annotations

import gc
import sys
import time
from typing import TYPE_CHECKING, Any

from ..audit import audit
from ..green import originals
from ..session.host_loop import running_loops
from .live import Feed, refuse_on_the_host_loop
from .registry import register
from .report import Report
from .stacks import describe_stack, format_stack
from .tasks import host_loops

if TYPE_CHECKING:
    import asyncio

__all__ = ["LoopWatchdog", "watch"]

_POLL = 0.02  # how often a late ping is looked at again


class LoopWatchdog(originals.Thread):
    """Pings one loop and reports when it is late: when the lateness passes the
    threshold (with the loop thread's stack at that moment), and when it ends."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        label: str,
        thread_ident: int | None,
        threshold: float,
        feed: Feed,
    ) -> None:
        super().__init__(name=f"manhole-ssh watchdog ({label})", daemon=True)
        self._loop, self._label, self._loop_thread = loop, label, thread_ident
        self._threshold, self._feed = threshold, feed
        self.stopping = originals.new_event()

    def run(self) -> None:
        while not self.stopping.is_set():
            answered = originals.new_event()
            sent = time.monotonic()
            try:
                self._loop.call_soon_threadsafe(answered.set)
            except RuntimeError:  # the loop was closed
                self._feed.put({"kind": "loop_closed", "loop": self._label})
                return
            if answered.wait(self._threshold):
                self.stopping.wait(self._threshold)
                continue
            frames = sys._current_frames()
            top = frames.get(self._loop_thread) if self._loop_thread is not None else None
            stack = describe_stack(top)
            del frames, top
            self._feed.put(
                {
                    "kind": "loop_blocked",
                    "loop": self._label,
                    "blocked_ms": round((time.monotonic() - sent) * 1000),
                    "stack": stack,
                }
            )
            while not answered.wait(_POLL) and not self.stopping.is_set():
                pass
            self._feed.put(
                {
                    "kind": "loop_unblocked" if answered.is_set() else "loop_still_blocked",
                    "loop": self._label,
                    "blocked_ms": round((time.monotonic() - sent) * 1000),
                }
            )


class _GcTimer:
    """A ``gc.callbacks`` entry timing full collections (generation 2)."""

    def __init__(self, threshold: float, feed: Feed) -> None:
        self._threshold, self._feed = threshold, feed
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            duration = time.perf_counter() - self._started
            self._started = None
            if duration >= self._threshold:
                self._feed.put(
                    {
                        "kind": "gc",
                        "duration_ms": round(duration * 1000, 1),
                        "collected": info.get("collected"),
                        "uncollectable": info.get("uncollectable"),
                    }
                )


def _describe(event: dict[str, Any]) -> str:
    kind = event["kind"]
    when = time.strftime("%H:%M:%S")
    if kind == "loop_blocked":
        lines = [f"{when} loop in {event['loop']} blocked for {event['blocked_ms']} ms so far, at:"]
        lines += format_stack(event["stack"][-12:]) or ["  (its thread's stack cannot be read)"]
        return "\n".join(lines)
    if kind == "loop_unblocked":
        return f"{when} loop in {event['loop']} ran again after {event['blocked_ms']} ms"
    if kind == "loop_still_blocked":
        return f"{when} loop in {event['loop']} still blocked after {event['blocked_ms']} ms"
    if kind == "gc":
        return (
            f"{when} full garbage collection took {event['duration_ms']} ms "
            f"({event['collected']} collected)"
        )
    return f"{when} {kind}: {event}"


def watch(
    loop_ms: float = 100,
    gc_ms: float = 50,
    seconds: float | None = None,
    host_loop: asyncio.AbstractEventLoop | None = None,
) -> Report:
    """Until Ctrl-C (or ``seconds``), report each time the host's asyncio loop is blocked
    longer than ``loop_ms`` (with the blocking stack) and each full garbage collection
    longer than ``gc_ms``. Events also go to the audit trail. Returns them."""
    refuse_on_the_host_loop("watch")
    feed = Feed()
    watcher = originals.current_thread().name
    idents = {id(loop): ident for ident, loop in running_loops().items()}
    watchdogs = [
        LoopWatchdog(loop, label, idents.get(id(loop)), loop_ms / 1000, feed)
        for loop, label in host_loops(host_loop)
    ]
    gc_timer = _GcTimer(gc_ms / 1000, feed)
    loops = " and ".join(f"the event loop in {label}" for _, label in host_loops(host_loop))
    watched = f"{loops} for stalls over {loop_ms:g} ms, and " if loops else "(no event loop runs) "

    def show(event: dict[str, Any]) -> None:
        stack = [
            f"{entry['file']}:{entry['line']} {entry['function']}"
            for entry in event.get("stack", [])
        ]
        audit("watch", watcher=watcher, **{**event, "stack": stack})
        print(_describe(event), flush=True)

    interrupted = False
    try:
        gc.callbacks.append(gc_timer)
        print(
            f"Watching {watched}full garbage collections over {gc_ms:g} ms, until Ctrl-C…",
            file=sys.stderr,
            flush=True,
        )
        for watchdog in watchdogs:
            watchdog.start()
        interrupted = feed.follow(show, seconds)
    except KeyboardInterrupt:  # (before following began)
        interrupted = True
    finally:
        if gc_timer in gc.callbacks:
            gc.callbacks.remove(gc_timer)
        for watchdog in watchdogs:
            watchdog.stopping.set()
    events = feed.seen
    ended = "Ctrl-C" if interrupted else "time up"
    dropped = f", {feed.dropped} dropped (too many)" if feed.dropped else ""
    return Report(
        {"events": events, "dropped": feed.dropped},
        f"Stopped watching ({ended}): {len(events)} event(s){dropped}.",
    )


register("watch", watch, "until Ctrl-C: each event-loop stall (with its stack) and long full GC")
