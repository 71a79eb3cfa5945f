"""The operating system's own threads, locks, sockets and selectors, whatever a green-thread
library has monkey-patched.

gevent's ``monkey.patch_all()`` and eventlet's ``monkey_patch()`` replace ``threading``,
``socket``, ``select``, ``selectors``, ``time.sleep`` and ``queue`` with versions that only
run when their hub gets control. A manhole built on those would be stuck exactly when the
host is: a greenlet doing CPU work, or blocked in C, holds the hub. So every thread, lock,
event, queue, selector and socket the manhole makes comes from here. (The manhole itself
never sleeps in a thread; a statement's ``time.sleep`` is the host's.)

Where neither gevent nor eventlet is loaded, each function returns the standard library's
own object, so plain threaded, asyncio and uvloop hosts see exactly what they saw before.
Where one has patched, the original comes from the patcher's own record
(``gevent.monkey.get_original``, ``eventlet.patcher.original``), as python-manhole does.
Where one is loaded but has not patched yet (a gunicorn arbiter, whose workers patch after
the fork), what lives on is built real by construction (:func:`green_possible`).

This module imports neither library (it only looks at ``sys.modules``) and patches
nothing: what it builds on the originals (:class:`Thread`, :class:`Condition`,
:class:`Event`; the loop in :mod:`.realloop`) is the manhole's own. It imports only what
``import manhole_ssh`` already costs.

The decision is made at each call, not at import: a host may patch after importing
``manhole_ssh``, as long as it does so before :func:`manhole_ssh.install`.
"""

from __future__ import annotations

import collections
import importlib
import queue
import socket
import sys
import threading
from typing import Any

__all__ = [
    "Condition",
    "Event",
    "Thread",
    "allocate_lock",
    "current_thread",
    "get_ident",
    "green_library",
    "green_possible",
    "local",
    "new_condition",
    "new_event",
    "original",
    "patched",
    "real_threads",
    "simple_queue",
    "socket_class",
    "socketpair",
]

# The names eventlet.patcher.is_monkey_patched() knows these modules by.
_EVENTLET_NAMES = {
    "_thread": "thread",
    "threading": "thread",
    "queue": "thread",
    "socket": "socket",
    "select": "select",
    "selectors": "select",
    "time": "time",
}


def patched(module_name: str) -> str | None:
    """The green library ("gevent" or "eventlet") that patched ``module_name``, if any."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched(module_name):
        return "gevent"
    patcher = sys.modules.get("eventlet.patcher")
    eventlet_name = _EVENTLET_NAMES.get(module_name)
    if patcher is not None and eventlet_name and patcher.is_monkey_patched(eventlet_name):
        return "eventlet"
    return None


def green_library() -> str | None:
    """The green library whose threads this process runs on ("gevent" or "eventlet"), if
    it has patched ``threading``."""
    return patched("threading") or patched("_thread")


def green_possible() -> bool:
    """Whether this process has patched, or has loaded a library that may yet patch (a
    gunicorn arbiter loads gevent, and each worker patches after the fork, while its
    manhole is already up). Objects that live on are then made real by construction."""
    return green_library() is not None or "gevent" in sys.modules or "eventlet" in sys.modules


def original(module_name: str, name: str) -> Any:
    """``module_name.name`` as it was before any green library patched it."""
    library = patched(module_name)
    if library == "gevent":
        return sys.modules["gevent.monkey"].get_original(module_name, name)
    if library == "eventlet":
        return getattr(sys.modules["eventlet.patcher"].original(module_name), name)
    return getattr(importlib.import_module(module_name), name)


def allocate_lock() -> Any:
    """A real (OS) lock, as ``threading.Lock()`` is when nothing is patched."""
    return original("_thread", "allocate_lock")()


def get_ident() -> int:
    """The calling OS thread's identifier (what ``sys._current_frames()`` is keyed by)."""
    return int(original("_thread", "get_ident")())


def simple_queue() -> Any:
    """A real ``queue.SimpleQueue`` (the C one, which no green library patches)."""
    if patched("queue") is None:
        return queue.SimpleQueue()
    import _queue

    return _queue.SimpleQueue()


def local() -> Any:
    """Real thread-local storage (gevent's and eventlet's are per greenlet)."""
    return original("_thread", "_local")()


def socket_class() -> type[socket.socket]:
    """A socket class whose objects, and those ``accept()`` returns, are plain OS sockets
    (the standard library's ``accept()`` wraps new connections in whatever class
    ``socket.socket`` names at that moment, which a green library replaces)."""
    if not green_possible():
        return socket.socket
    return _real_socket_class(original("socket", "socket"))


_real_socket_classes: dict[type, type[socket.socket]] = {}


def _real_socket_class(base: type[socket.socket]) -> type[socket.socket]:
    if base not in _real_socket_classes:

        class RealSocket(base):  # type: ignore[valid-type, misc]
            __slots__ = ()

            def accept(self) -> tuple[socket.socket, Any]:
                descriptor, address = self._accept()
                return type(self)(self.family, self.type, self.proto, fileno=descriptor), address

        _real_socket_classes[base] = RealSocket
    return _real_socket_classes[base]


def socketpair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of OS sockets (asyncio's loop wakes itself with one)."""
    if patched("socket") is None:
        return socket.socketpair()
    import _socket

    real = socket_class()
    first, second = _socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return (
        real(first.family, first.type, first.proto, fileno=first.detach()),
        real(second.family, second.type, second.proto, fileno=second.detach()),
    )


class Condition:
    """A condition variable on real locks, for green hosts (``threading.Condition`` takes its
    waiters' locks from the patched ``threading`` module). Not reentrant."""

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._waiters: collections.deque[Any] = collections.deque()

    def __enter__(self) -> bool:
        return bool(self._lock.acquire())

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notify (or ``timeout``), take the lock again."""
        waiter = allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        self._lock.release()
        notified = False
        try:
            notified = waiter.acquire(True, -1 if timeout is None else timeout)
            return bool(notified)
        finally:
            self._lock.acquire()
            if not notified:
                try:  # noqa: SIM105
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    def notify(self, count: int = 1) -> None:
        for _ in range(min(count, len(self._waiters))):
            self._waiters.popleft().release()

    def notify_all(self) -> None:
        self.notify(len(self._waiters))


class Event:
    """``threading.Event`` on real locks, for green hosts."""

    def __init__(self) -> None:
        self._condition = Condition()
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._condition:
            self._flag = True
            self._condition.notify_all()

    def clear(self) -> None:
        with self._condition:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        with self._condition:
            if not self._flag:
                self._condition.wait(timeout)
            return self._flag


def new_condition() -> Any:
    """A condition variable: the standard library's, or :class:`Condition` where a green
    library is loaded (the standard one takes a new lock at each ``wait()`` from
    ``threading``, which may be patched by then)."""
    return threading.Condition() if not green_possible() else Condition()


def new_event() -> Any:
    """An event: the standard library's, or :class:`Event` where a green library is loaded."""
    return threading.Event() if not green_possible() else Event()


_threads_lock = allocate_lock()
_real_threads: dict[int, Thread] = {}


class Thread(original("threading", "Thread")):  # type: ignore[misc]
    """``threading.Thread``, started as a real OS thread even in a green host.

    In a green host, ``threading.Thread.start()`` makes a greenlet; this starts the thread
    with the original ``_thread.start_new_thread`` instead. Such a thread is not in
    ``threading.enumerate()`` (the patched module's list): :func:`real_threads` lists
    them, and :func:`current_thread` finds them.
    """

    _real = False
    _real_ident: int | None = None

    def start(self) -> None:
        if green_library() is None:
            super().start()
            return
        self._real = True
        self._real_done = allocate_lock()
        self._real_done.acquire()
        started = allocate_lock()
        started.acquire()
        original("_thread", "start_new_thread")(self._real_bootstrap, (started,))
        started.acquire()
        if not self.daemon:
            import atexit

            atexit.register(self.join)  # the interpreter does not wait for it otherwise

    def _real_bootstrap(self, started: Any) -> None:
        self._real_ident = get_ident()
        with _threads_lock:
            _real_threads[self._real_ident] = self
        started.release()
        try:
            self.run()
        except SystemExit:
            pass
        except BaseException:
            threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), self)))
        finally:
            with _threads_lock:
                _real_threads.pop(self._real_ident, None)
            self._real_done.release()

    @property
    def ident(self) -> int | None:
        return self._real_ident if self._real else super().ident

    def is_alive(self) -> bool:
        if not self._real:
            return bool(super().is_alive())
        return self._real_ident in _real_threads

    def join(self, timeout: float | None = None) -> None:
        if not self._real:
            super().join(timeout)
            return
        if self._real_ident == get_ident():
            raise RuntimeError("cannot join current thread")
        if self._real_done.acquire(True, -1 if timeout is None else timeout):
            self._real_done.release()


def real_threads() -> list[Thread]:
    """The real threads started by :class:`Thread` in a green host, running now."""
    with _threads_lock:
        return list(_real_threads.values())


def current_thread() -> threading.Thread:
    """``threading.current_thread()``, which knows the real threads of a green host."""
    with _threads_lock:
        found = _real_threads.get(get_ident())
    return found if found is not None else threading.current_thread()
