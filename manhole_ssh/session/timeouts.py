"""A session's idle_timeout and session_timeout, checked on the loop at each deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["SessionTimeouts"]


class SessionTimeouts:
    """Calls ``expire(reason)`` once the session is past its ``session_timeout``, or idle
    (nothing typed, ``busy()`` false) past its ``idle_timeout``; either may be None."""

    def __init__(
        self,
        idle_timeout: float | None,
        session_timeout: float | None,
        *,
        busy: Callable[[], bool],
        expire: Callable[[str], object],
    ) -> None:
        self._idle_timeout = idle_timeout
        self._session_timeout = session_timeout
        self._busy = busy
        self._expire = expire
        self.started = time.monotonic()
        self._last_activity = self.started
        self._check: asyncio.TimerHandle | None = None
        self._closed = False

    def touch(self) -> None:
        """The client sent something: it is not idle."""
        self._last_activity = time.monotonic()

    def check(self) -> None:
        """End the session if a timeout is reached; else check again at the next deadline."""
        self._check = None
        idle_timeout, session_timeout = self._idle_timeout, self._session_timeout
        now = time.monotonic()
        deadlines = []
        if session_timeout is not None:
            if now - self.started >= session_timeout:
                self._expire(f"session_timeout of {session_timeout:g} s reached")
                return
            deadlines.append(self.started + session_timeout)
        if idle_timeout is not None:
            if self._busy():
                self._last_activity = now  # running code is not idleness
            elif now - self._last_activity >= idle_timeout:
                self._expire(f"idle for {idle_timeout:g} s (idle_timeout)")
                return
            deadlines.append(self._last_activity + idle_timeout)
        if deadlines and not self._closed:
            delay = max(0.05, min(deadlines) - now)
            self._check = asyncio.get_running_loop().call_later(delay, self.check)

    def close(self) -> None:
        """Check no more."""
        self._closed = True
        if self._check is not None:
            self._check.cancel()
            self._check = None
