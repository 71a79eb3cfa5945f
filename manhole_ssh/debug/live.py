"""Showing events as they happen, in the statement that asked for them, until Ctrl-C.

The events come from other threads (a watchdog, the host's logging calls) through a
bounded queue; the statement's own thread prints them, so they reach this session only.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from ..green import originals
from ..session.streams import on_a_host_loop

__all__ = ["Feed", "refuse_on_the_host_loop"]

_WAIT_SLICE = 0.1  # how often the waiting statement looks at the clock and its stop flag


def refuse_on_the_host_loop(helper: str) -> None:
    """A helper that waits (sampling, watching, streaming, walking the heap) must not run on
    the service's event loop, where a statement that awaits runs whole: the loop would
    stop for as long.

    :raises RuntimeError: there.
    """
    if on_a_host_loop():
        raise RuntimeError(
            f"{helper}() on the service's event loop would stop the loop while it runs (this "
            "statement awaits, so it runs there): call it in a statement without await"
        )


class Feed:
    """A bounded queue of events from other threads; what does not fit is counted."""

    def __init__(self, size: int = 10_000) -> None:
        # (The real threads' SimpleQueue: a gevent or eventlet host's queue.Queue would be
        # green, and the statement's thread is a real one.)
        self._queue = originals.simple_queue()
        self._size = size
        self.dropped = 0
        self.seen: list[Any] = []  # the events shown so far
        self.stop = originals.new_event()

    def put(self, event: Any) -> None:
        """From any thread, never blocking: a full queue drops the event (and counts it)."""
        if self._queue.qsize() >= self._size:
            self.dropped += 1
            return
        self._queue.put(event)

    def follow(self, show: Callable[[Any], None], seconds: float | None) -> bool:
        """Show each event as it comes (and keep it in :attr:`seen`), until Ctrl-C,
        ``stop`` or ``seconds``; whether Ctrl-C ended it."""
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while not self.stop.is_set():
                timeout = _WAIT_SLICE
                if deadline is not None:
                    timeout = min(timeout, deadline - time.monotonic())
                    if timeout <= 0:
                        break
                try:
                    event = self._queue.get(timeout=timeout)
                except queue.Empty:
                    continue
                self.seen.append(event)
                show(event)
        except KeyboardInterrupt:
            return True
        return False
