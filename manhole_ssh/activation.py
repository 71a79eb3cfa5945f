"""A manhole that listens only once a signal arrives (``activate_on``): the handler that
waits for it, set in the main thread, chained to the one it replaced, and put back."""

from __future__ import annotations

import contextlib
import signal
from types import FrameType
from typing import Any

from .errors import ConfigError
from .green import originals

__all__ = ["ActivationSignal"]


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
