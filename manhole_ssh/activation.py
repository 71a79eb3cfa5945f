"""What wakes a dormant manhole's thread: the signal it waits for before it listens
(``activate_on``), its handler set in the main thread, chained to the one it replaced, and
put back; and the pipe that wakes it from ``select()`` when it stops."""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType
from typing import Any

from .errors import ConfigError
from .green import originals

__all__ = ["ActivationSignal", "WakeupPipe"]


class ActivationSignal:
    """Waits for one signal. The handler only sets an event (safe wherever the main thread
    was interrupted); the manhole's thread waits on it and does the rest."""

    def __init__(self) -> None:
        self._event = originals.new_event()
        self._number: int | None = None  # armed for this signal
        self._previous_handler: Any = None

    @property
    def armed(self) -> bool:
        return self._number is not None

    def arm(self, signal_number: int) -> None:
        """Catch ``signal_number`` from now on. Raises :class:`ConfigError` outside the
        main thread (Python sets signal handlers there only)."""
        name = signal.Signals(signal_number).name
        try:
            self._previous_handler = signal.signal(signal_number, self._on_signal)
        except ValueError:
            raise ConfigError(
                f"activate_on={name} needs install() to be called from the main thread "
                "(Python sets signal handlers there only)"
            ) from None
        self._number = signal_number

    def _on_signal(self, signal_number: int, frame: FrameType | None) -> None:
        self._event.set()
        previous = self._previous_handler
        if callable(previous):
            previous(signal_number, frame)

    def wait(self) -> None:
        """Until the signal came, or :meth:`release` was called."""
        self._event.wait()

    def release(self) -> None:
        """Let :meth:`wait` return at once (the manhole stops)."""
        self._event.set()

    def disarm(self) -> None:
        """Put the replaced handler back, if ours is still the one set (and this is the
        main thread: elsewhere it is left)."""
        if self._number is None:
            return
        with contextlib.suppress(ValueError, TypeError):
            if signal.getsignal(self._number) == self._on_signal:
                signal.signal(self._number, self._previous_handler)
                self._number = None


class WakeupPipe:
    """A pipe that wakes the dormant manhole's thread from its ``select()`` (stop());
    closed, under its lock, when the thread ends, so that no write goes to a reused
    descriptor."""

    def __init__(self) -> None:
        self._lock = originals.allocate_lock()
        self._read = self._write = -1

    def open(self) -> None:
        self._read, self._write = os.pipe()

    def wake(self) -> None:
        """Wake the thread if it waits (nothing once the pipe is closed)."""
        with self._lock:
            if self._write >= 0:
                os.write(self._write, b"x")

    def wait(self, descriptors: list[int]) -> list[int] | None:
        """Wait, importing nothing, until one of ``descriptors`` is readable: those that
        are; ``None`` if woken instead."""
        wait_readable = originals.original("select", "select")
        readable, _, _ = wait_readable([*descriptors, self._read], [], [])
        if self._read in readable:
            return None
        return list(readable)

    def close(self) -> None:
        with self._lock:
            os.close(self._read)
            os.close(self._write)
            self._read = self._write = -1

    def forget_after_fork(self) -> None:
        """In a forked child: close the copies of both ends; the lock may have been held
        by a thread that is gone, so it is made anew."""
        for descriptor in (self._read, self._write):
            if descriptor >= 0:
                with contextlib.suppress(OSError):
                    os.close(descriptor)
        self._read = self._write = -1
        self._lock = originals.allocate_lock()
