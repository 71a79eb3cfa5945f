"""``tasks()``, ``where(task)``, ``cancel(task)``: the asyncio tasks of the host's loops.

They run in the session's worker thread, never on the host's loop, so they answer while
the loop is blocked. Reading a running loop's tasks from another thread is safe in the
ways used here: the task set is copied (asyncio's ``all_tasks`` retries when the set
changes under it; so do we), and the coroutine chain is read, never resumed. Only
``cancel`` acts, through ``loop.call_soon_threadsafe``. Reports hold names and ids of
tasks, never the tasks.

Who awaits a task: Python 3.14's ``asyncio.capture_call_graph`` where present; before
that, from each task's ``_fut_waiter`` (the future it is suspended on: a task, or a
``gather`` of tasks), the facts asyncio itself keeps. Tasks awaited some other way
(through a plain future a callback completes) show no awaiter.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from ..session.host_loop import running_loops
from .registry import register
from .report import Report
from .stacks import describe_frame, format_stack

__all__ = ["cancel", "tasks", "where"]

_COPY_ATTEMPTS = 100


def host_loops(
    given: asyncio.AbstractEventLoop | None,
) -> list[tuple[asyncio.AbstractEventLoop, str]]:
    """The loop given to ``install()``/``set_loop()`` and every loop running in a thread,
    each with where it runs."""
    found: list[tuple[asyncio.AbstractEventLoop, str]] = []
    running = running_loops()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    if given is not None and not given.is_closed():
        thread = next((names.get(ident) for ident, loop in running.items() if loop is given), None)
        found.append((given, f"thread {thread!r}" if thread else "given to install()"))
    for ident, loop in running.items():
        if all(loop is not known for known, _ in found):
            found.append((loop, f"thread {names.get(ident, ident)!r}"))
    return found


def copy_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    """``asyncio.all_tasks(loop)``, done ones too, read from another thread: the set may
    change while it is copied (``RuntimeError: Set changed size during iteration``), then
    the copy is tried again."""
    for _ in range(_COPY_ATTEMPTS):
        try:
            return [task for task in _all_tasks(loop) if task.get_loop() is loop]
        except RuntimeError:
            continue
    raise RuntimeError(f"the tasks of {loop!r} changed too fast to be read; try again")


def _all_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    # asyncio.all_tasks() keeps pending tasks only; a session wants those.
    return list(asyncio.all_tasks(loop))


def coroutine_chain(task: asyncio.Task[Any]) -> tuple[list[Any], str | None]:
    """The frames of a task's coroutine and of every coroutine it awaits in turn (the
    outermost first), and what the innermost waits on when that is not a coroutine."""
    frames = []
    awaitable: Any = task.get_coro()
    waits_on = None
    for _ in range(1000):  # (a cycle is impossible in CPython; never loop forever anyway)
        frame = (
            getattr(awaitable, "cr_frame", None)
            or getattr(awaitable, "gi_frame", None)
            or getattr(awaitable, "ag_frame", None)
        )
        if frame is None:  # a future's iterator (or another awaitable): what it waits on
            waiter = getattr(task, "_fut_waiter", None)
            waits_on = _describe_awaitable(waiter if waiter is not None else awaitable)
            break
        frames.append(frame)
        inner = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
        if inner is None:
            waiter = getattr(task, "_fut_waiter", None)
            waits_on = _describe_awaitable(waiter) if waiter is not None else None
            break
        awaitable = inner
    return frames, waits_on


def _describe_awaitable(awaitable: Any) -> str:
    if isinstance(awaitable, asyncio.Task):
        return f"task {awaitable.get_name()!r}"
    if isinstance(awaitable, asyncio.Future):
        return f"{type(awaitable).__name__} ({_future_state(awaitable)})"
    return type(awaitable).__name__


def _future_state(future: asyncio.Future[Any]) -> str:
    if future.cancelled():
        return "cancelled"
    if future.done():
        return "finished"
    return "pending"


def _state(task: asyncio.Task[Any]) -> str:
    if task.done():
        return "cancelled" if task.cancelled() else "finished"
    coroutine = task.get_coro()
    if inspect.iscoroutine(coroutine) and inspect.getcoroutinestate(coroutine) == "CORO_RUNNING":
        return "running"
    if task.cancelling():
        return "cancelling"
    return "pending"


def awaiters(all_tasks: list[asyncio.Task[Any]]) -> dict[int, list[asyncio.Task[Any]]]:
    """id(task) -> the tasks that await it."""
    awaited_by: dict[int, list[asyncio.Task[Any]]] = {}
    capture = getattr(asyncio, "capture_call_graph", None)
    for task in all_tasks:
        if capture is not None:  # Python 3.14+
            try:
                graph = capture(task, depth=1, limit=0)
            except RuntimeError:  # its awaiters changed while read from this thread
                graph = None
            if graph is not None:
                for parent in graph.awaited_by:
                    if isinstance(parent.future, asyncio.Task):
                        awaited_by.setdefault(id(task), []).append(parent.future)
                continue
        waiter = getattr(task, "_fut_waiter", None)
        children = getattr(waiter, "_children", None) if waiter is not None else None
        awaited = [waiter] if isinstance(waiter, asyncio.Task) else list(children or ())
        for child in awaited:
            if isinstance(child, asyncio.Task):
                awaited_by.setdefault(id(child), []).append(task)
    return awaited_by


def _chain(task: asyncio.Task[Any], awaited_by: dict[int, list[asyncio.Task[Any]]]) -> list[str]:
    """The names of the tasks awaiting ``task``, then those awaiting them, and so on."""
    chain: list[str] = []
    seen = {id(task)}
    current = task
    while True:
        parents = [parent for parent in awaited_by.get(id(current), []) if id(parent) not in seen]
        if not parents:
            return chain
        current = parents[0]
        seen.add(id(current))
        chain.append(current.get_name())


def _coroutine_name(task: asyncio.Task[Any]) -> str:
    coroutine = task.get_coro()
    return getattr(coroutine, "__qualname__", None) or type(coroutine).__name__


def tasks(host_loop: asyncio.AbstractEventLoop | None = None) -> Report:
    """Every pending task of the host's asyncio loop(s): name, state, coroutine, where it
    is suspended, and the tasks awaiting it. Works while the loop is blocked."""
    loops = []
    for loop, where_it_runs in host_loops(host_loop):
        found = copy_tasks(loop)
        awaited_by = awaiters(found)
        rows = []
        for task in sorted(found, key=lambda task: task.get_name()):
            frames, waits_on = coroutine_chain(task)
            innermost = frames[-1] if frames else None
            rows.append(
                {
                    "name": task.get_name(),
                    "id": id(task),
                    "state": _state(task),
                    "coroutine": _coroutine_name(task),
                    "suspended_at": (
                        f"{innermost.f_code.co_filename}:{innermost.f_lineno} "
                        f"in {innermost.f_code.co_name}"
                        if innermost is not None
                        else None
                    ),
                    "waits_on": waits_on,
                    "awaited_by": _chain(task, awaited_by),
                }
            )
        del found, awaited_by
        loops.append({"loop": repr(loop), "runs_in": where_it_runs, "tasks": rows})
    return Report(loops, _format_tasks(loops))


def _format_tasks(loops: list[dict[str, Any]]) -> str:
    if not loops:
        return (
            "No asyncio loop of the host is running (none given to install() or set_loop(), "
            "none found in the threads' stacks)."
        )
    lines = []
    for loop in loops:
        lines.append(f"{loop['loop']} in {loop['runs_in']}: {len(loop['tasks'])} tasks")
        for row in loop["tasks"]:
            lines.append(f"  {row['name']} [{row['state']}] {row['coroutine']}()  id {row['id']}")
            if row["suspended_at"]:
                waits = f", waiting on {row['waits_on']}" if row["waits_on"] else ""
                lines.append(f"      at {row['suspended_at']}{waits}")
            if row["awaited_by"]:
                lines.append(f"      awaited by {' <- '.join(row['awaited_by'])}")
    return "\n".join(lines)


def find_task(
    task: asyncio.Task[Any] | str | int, host_loop: asyncio.AbstractEventLoop | None
) -> asyncio.Task[Any]:
    """A task given as itself, its name, or its id (as ``tasks()`` lists them).

    :raises LookupError: no such pending task, or a name several tasks have.
    """
    if isinstance(task, asyncio.Task):
        return task
    matches = [
        candidate
        for loop, _ in host_loops(host_loop)
        for candidate in copy_tasks(loop)
        if candidate.get_name() == task or id(candidate) == task
    ]
    if not matches:
        raise LookupError(f"no pending task named {task!r} (tasks() lists them)")
    if len(matches) > 1:
        raise LookupError(f"{len(matches)} tasks are named {task!r}: give its id from tasks()")
    return matches[0]


def where(
    task: asyncio.Task[Any] | str | int,
    locals: bool = False,
    host_loop: asyncio.AbstractEventLoop | None = None,
) -> Report:
    """One task's whole stack, through every coroutine it awaits (by task, name or id).

    :param locals: also each frame's variables (secret-looking names masked).
    """
    found = find_task(task, host_loop)
    frames, waits_on = coroutine_chain(found)
    stack = [describe_frame(frame, locals) for frame in frames]
    del frames
    data = {
        "name": found.get_name(),
        "id": id(found),
        "state": _state(found),
        "stack": stack,
        "waits_on": waits_on,
    }
    lines = [
        f"Task {data['name']!r} [{data['state']}], outermost call first:",
        *format_stack(stack),
    ]
    if waits_on:
        lines.append(f"  waiting on {waits_on}")
    return Report(data, "\n".join(lines))


def cancel(
    task: asyncio.Task[Any] | str | int,
    msg: str | None = None,
    host_loop: asyncio.AbstractEventLoop | None = None,
) -> Report:
    """Cancel a task (by task, name or id) on its own loop's thread (thread-safe); it sees
    ``CancelledError(msg)`` when its loop next runs it."""
    found = find_task(task, host_loop)
    loop = found.get_loop()
    loop.call_soon_threadsafe(found.cancel, msg)
    data = {"name": found.get_name(), "id": id(found), "requested": True}
    return Report(
        data,
        f"Cancellation of task {data['name']!r} requested: it takes effect when its loop "
        "next runs it (now, unless the loop is blocked).",
    )


register("tasks", tasks, "every asyncio task of the host's loops: state, where, awaited by")
register("where", where, "one asyncio task's whole stack (by name, id or task)")
register("cancel", cancel, "cancel an asyncio task on its own loop, thread-safely")
