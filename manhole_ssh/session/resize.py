"""A storm of window-change requests coalesced: the last size wins, applied at most every
``interval`` seconds, since each drawing of the prompt costs milliseconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["MAX_COLUMNS", "MAX_ROWS", "ResizeCoalescer", "clamped_size"]

# Terminal sizes past these are taken as these: prompt_toolkit's drawing costs grow with
# the width (4294967295 columns ran for hours), and no screen shows more.
MAX_COLUMNS = 1000
MAX_ROWS = 1000
# A storm of window-change requests is applied at most this often (seconds): the last wins.
RESIZE_INTERVAL = 0.05


def clamped_size(columns: int, rows: int) -> tuple[int, int]:
    """``(columns, rows)`` no larger than MAX_COLUMNS and MAX_ROWS."""
    return min(columns, MAX_COLUMNS), min(rows, MAX_ROWS)


class ResizeCoalescer:
    """Hands each new terminal size to ``apply``: at once, or, within a storm of them,
    the last one at most every ``interval`` seconds."""

    def __init__(
        self, apply: Callable[[int, int], object], interval: float = RESIZE_INTERVAL
    ) -> None:
        self._apply = apply
        self._interval = interval
        self._pending: tuple[int, int] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._applied_at = 0.0
        self._closed = False

    def request(self, width: int, height: int) -> None:
        """Take a new size (clamped), to be applied when its turn comes."""
        self._pending = clamped_size(width, height)
        if self._handle is None and not self._closed:
            delay = max(0.0, self._applied_at + self._interval - time.monotonic())
            self._handle = asyncio.get_running_loop().call_later(delay, self._apply_pending)

    def close(self) -> None:
        """Apply no more sizes."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _apply_pending(self) -> None:
        self._handle = None
        self._applied_at = time.monotonic()
        if self._pending is None:
            return
        width, height = self._pending
        self._pending = None
        self._apply(width, height)
