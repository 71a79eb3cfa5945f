"""A log line for a problem that can repeat thousands of times a second (a client flood,
a process out of descriptors): logged once, then at most once per interval with a count,
so that the host's log, disk and CPU are not the flood's next victims."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["BoundedLog"]


class BoundedLog:
    """:param interval: seconds between two lines at most.
    :param clock: where "now" comes from (a test passes its own)."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._level = level
        self._interval = interval
        self._clock = clock
        self._next = float("-inf")
        self._unlogged = 0

    def note(self, message: str) -> None:
        now = self._clock()
        if now < self._next:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more since the last report)" if self._unlogged else ""
        self._logger.log(self._level, "%s%s", message, more)
        self._unlogged = 0
        self._next = now + self._interval
