"""Accepting connections on a listening socket, without spinning when descriptors run out.

asyncio's own accept loop (``loop.create_server``, which ``asyncssh.listen`` uses) logs
"socket.accept() out of system resource" for every failed ``accept()`` and, on CPython
3.11 and 3.12, goes on calling ``accept()`` up to its backlog each time, scheduling a
restart per failure: a client holding the process at its file limit drew 789,540 such
log lines in 3 minutes, and the host's own ``open()`` kept failing. Here, the first
``EMFILE``/``ENFILE`` pauses the listener (nothing is accepted, the kernel's backlog
holds the waiting clients), retries after a delay that doubles up to
``MAX_PAUSE``, and logs at most one line per ``LOG_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from ..boundedlog import BoundedLog

__all__ = ["Acceptor"]

log = logging.getLogger("manhole_ssh.server")

MIN_PAUSE = 0.1  # seconds the listener rests after the first accept() that ran out
MAX_PAUSE = 2.0
LOG_INTERVAL = 60.0  # at most one log line per this many seconds about failed accepts
_ACCEPTS_PER_WAKEUP = 16  # then let the loop serve the connections it has
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    """Accepts on ``listening`` and hands each connection to ``serve`` as a task.

    :param listening: a bound, listening, non-blocking socket (closed by :meth:`close`).
    :param serve: runs one accepted connection (its errors are its own to log).
    """

    def __init__(
        self,
        listening: socket.socket,
        serve: Callable[[socket.socket], Coroutine[Any, Any, None]],
    ) -> None:
        self._listening = listening
        self._serve = serve
        self._loop = asyncio.get_running_loop()
        self._pause = 0.0  # the current pause; 0 while accepting normally
        self._resume: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors = BoundedLog(log, logging.ERROR, LOG_INTERVAL)
        self._closed = False
        self._loop.add_reader(listening.fileno(), self._accept)

    @property
    def paused(self) -> bool:
        return self._resume is not None

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                connection, _ = self._listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                self._rest(error)
                return
            if self._pause:
                log.warning("accepting connections again after running out of resources")
                self._pause = 0.0
            task = self._loop.create_task(self._serve(connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _rest(self, error: OSError) -> None:
        """Stop accepting for a while: the error would come back at once."""
        self._pause = min(MAX_PAUSE, max(MIN_PAUSE, self._pause * 2))
        why = "out of file descriptors or memory" if error.errno in _OUT_OF_RESOURCES else "failed"
        self._errors.note(
            f"accept() {why} ({error.strerror}): not accepting connections for {self._pause:g} s, "
            "then trying again"
        )
        self._loop.remove_reader(self._listening.fileno())
        self._resume = self._loop.call_later(self._pause, self._try_again)

    def _try_again(self) -> None:
        self._resume = None
        if not self._closed:
            self._loop.add_reader(self._listening.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting, close the listening socket, and drop connections not yet
        handed over (their tasks are cancelled)."""
        if self._closed:
            return
        self._closed = True
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        else:
            self._loop.remove_reader(self._listening.fileno())
        self._listening.close()
        for task in list(self._tasks):
            task.cancel()
