"""The manhole's asyncio loop and its default executor, on the operating system's own
selector, sockets and threads (see :mod:`.originals`), so that neither waits in a green hub.

When nothing is patched, :func:`new_event_loop` is ``asyncio.new_event_loop()`` and the
executor is a ``ThreadPoolExecutor``, as before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
from collections.abc import Callable, Mapping
from typing import Any

from .originals import Thread, allocate_lock, green_possible, original, simple_queue, socketpair

__all__ = ["PollSelector", "RealThreadPool", "new_event_loop"]


class PollSelector(selectors.BaseSelector):
    """A selector on the original ``select.poll``, for the manhole's loop in a green host
    (the patched ``selectors`` module's ones wait in the hub, and gevent removes epoll)."""

    def __init__(self) -> None:
        self._poll = original("select", "poll")()
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        descriptor = _descriptor(fileobj)
        if descriptor in self._keys:
            raise KeyError(f"{fileobj!r} (FD {descriptor}) is already registered")
        key = selectors.SelectorKey(fileobj, descriptor, events, data)
        self._poll.register(descriptor, _poll_mask(events))
        self._keys[descriptor] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = self._keys.pop(_descriptor(fileobj))
        try:  # noqa: SIM105
            self._poll.unregister(key.fd)
        except OSError:
            pass  # closed already
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = self._keys.get(_descriptor(fileobj))
        if key is None:
            raise KeyError(f"{fileobj!r} is not registered")
        if events != key.events:
            self._poll.modify(key.fd, _poll_mask(events))
        new_key = key._replace(events=events, data=data)
        self._keys[key.fd] = new_key
        return new_key

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        milliseconds = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        ready = []
        for descriptor, mask in self._poll.poll(milliseconds):
            key = self._keys.get(descriptor)
            if key is None:
                continue
            events = 0
            if mask & ~_POLL_WRITE:
                events |= selectors.EVENT_READ
            if mask & ~_POLL_READ:
                events |= selectors.EVENT_WRITE
            ready.append((key, events & key.events))
        return ready

    def close(self) -> None:
        self._keys.clear()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return _KeyMapping(self._keys)


_POLL_READ = 0x001  # POLLIN
_POLL_WRITE = 0x004  # POLLOUT


def _poll_mask(events: int) -> int:
    mask = 0
    if events & selectors.EVENT_READ:
        mask |= _POLL_READ
    if events & selectors.EVENT_WRITE:
        mask |= _POLL_WRITE
    return mask


def _descriptor(fileobj: Any) -> int:
    descriptor = fileobj if isinstance(fileobj, int) else int(fileobj.fileno())
    if descriptor < 0:
        raise ValueError(f"Invalid file descriptor: {descriptor}")
    return descriptor


class _KeyMapping(Mapping[Any, selectors.SelectorKey]):
    def __init__(self, keys: dict[int, selectors.SelectorKey]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys[_descriptor(fileobj)]

    def __iter__(self) -> Any:
        return iter(self._keys)


class _RealLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop on a real selector, woken through a real socket pair."""

    def _make_self_pipe(self) -> None:
        # asyncio's own (3.11-3.13) makes its wake-up pair with the patched socket module.
        self._ssock, self._csock = socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._internal_fds += 1  # type: ignore[attr-defined]
        self._add_reader(self._ssock.fileno(), self._read_from_self)  # type: ignore[attr-defined]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new asyncio loop that waits in the operating system, never in a green hub."""
    if not green_possible():
        return asyncio.new_event_loop()
    if not hasattr(asyncio.SelectorEventLoop, "_make_self_pipe"):
        return asyncio.SelectorEventLoop(selector=PollSelector())  # wakes through green sockets
    return _RealLoop(selector=PollSelector())


class RealThreadPool(concurrent.futures.ThreadPoolExecutor):
    """The manhole loop's default executor in a green host: ``ThreadPoolExecutor`` starts
    its workers with the patched ``threading``, so they would be greenlets of a hub the
    manhole's thread never runs. Up to ``max_workers`` real threads, started as needed."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        # (asyncio takes only a ThreadPoolExecutor as the default executor: this is one, whose
        # submit() and shutdown() use none of what its base class set up.)
        super().__init__(max_workers, thread_name_prefix)
        self._max_workers = max_workers
        self._real_prefix = thread_name_prefix
        self._real_jobs = simple_queue()
        self._real_threads: list[Thread] = []
        self._real_idle = 0
        self._real_lock = allocate_lock()
        self._real_shut_down = False

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        with self._real_lock:
            if self._real_shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            self._real_jobs.put((future, fn, args, kwargs))
            if self._real_idle == 0 and len(self._real_threads) < self._max_workers:
                thread = Thread(
                    target=self._work,
                    name=f"{self._real_prefix}_{len(self._real_threads)}",
                    daemon=True,
                )
                self._real_threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            with self._real_lock:
                self._real_idle += 1
            job = self._real_jobs.get()
            with self._real_lock:
                self._real_idle -= 1
            if job is None:
                return
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as error:
                    future.set_exception(error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._real_lock:
            self._real_shut_down = True
            threads = list(self._real_threads)
        for _ in threads:
            self._real_jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()
