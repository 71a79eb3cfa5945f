"""``heap()``, ``heap_snapshot()``/``heap_diff()``/``heap_stop()``, ``referrers(obj)``.

None of them keeps what it reports alive: a report holds type names, counts, sizes,
file:line and short reprs only, and the lists of objects walked are dropped before it
returns.

``heap_snapshot()`` starts ``tracemalloc`` if it is not tracing (this is visible to the
whole process: every allocation then costs more, typically 1.5 to 3 times) and it keeps
tracing until ``heap_stop()``, which stops it only if a session started it.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import sys
import time
import tracemalloc
from collections import Counter
from typing import Any

from ..green import originals
from .live import refuse_on_the_host_loop
from .registry import register
from .report import Report
from .stacks import mask_locals

__all__ = ["heap", "heap_diff", "heap_snapshot", "heap_stop", "referrers"]

_CHECK_EVERY = 10_000  # objects between looks at the clock

_lock = originals.allocate_lock()
_baseline: tracemalloc.Snapshot | None = None
_started_by_us = False


def heap(top: int = 20, budget: float = 2.0) -> Report:
    """Objects the garbage collector tracks (containers, instances: not ints or strings on
    their own), counted and sized (``sys.getsizeof``, shallow) by type, largest total
    first. Stops after ``budget`` seconds and says so: a host with millions of objects
    gets a partial count rather than a long pause."""
    refuse_on_the_host_loop("heap")
    started = time.monotonic()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    objects = gc.get_objects()
    total = len(objects)
    seen = 0
    stopped_early = False
    try:
        for index, value in enumerate(objects):
            kind = type(value)
            name = (
                f"{kind.__module__}.{kind.__qualname__}"
                if kind.__module__ != "builtins"
                else kind.__qualname__
            )
            counts[name] += 1
            with contextlib.suppress(Exception):  # a host type whose __sizeof__ fails
                sizes[name] += sys.getsizeof(value)
            seen = index + 1
            if seen % _CHECK_EVERY == 0 and time.monotonic() - started > budget:
                stopped_early = True
                break
    finally:
        del objects
    rows = [
        {"type": name, "count": counts[name], "bytes": size}
        for name, size in sizes.most_common(top)
    ]
    data = {
        "objects_seen": seen,
        "objects_tracked": total,
        "stopped_early": stopped_early,
        "seconds": round(time.monotonic() - started, 3),
        "types": rows,
    }
    head = (
        f"Stopped after {budget} s: counted {seen} of {total} tracked objects."
        if stopped_early
        else f"{total} objects tracked by the garbage collector."
    )
    lines = [head, f"  {'bytes':>12} {'count':>10}  type"]
    lines += [f"  {row['bytes']:>12,} {row['count']:>10,}  {row['type']}" for row in rows]
    return Report(data, "\n".join(lines))


def heap_snapshot(frames: int = 10) -> Report:
    """Take the baseline for ``heap_diff()``; starts ``tracemalloc`` (``frames`` deep) if
    it is not tracing: allocations made before that are not seen."""
    global _baseline, _started_by_us
    with _lock:
        if not tracemalloc.is_tracing():
            tracemalloc.start(frames)
            _started_by_us = True
        _baseline = _snapshot()
        traced, peak = tracemalloc.get_traced_memory()
    data = {"traced_bytes": traced, "peak_bytes": peak, "started_tracing": _started_by_us}
    started = (
        "tracemalloc started by this manhole (all allocations cost more until heap_stop()); "
        if _started_by_us
        else ""
    )
    return Report(
        data,
        f"Baseline taken: {traced:,} bytes traced. {started}heap_diff() shows what grew since.",
    )


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        )
    )


def heap_diff(top: int = 20, group_by: str = "lineno") -> Report:
    """What was allocated since ``heap_snapshot()`` and is still alive, by source line
    (``group_by="traceback"`` for whole stacks), biggest growth first."""
    with _lock:
        if _baseline is None or not tracemalloc.is_tracing():
            raise RuntimeError("no baseline: call heap_snapshot() first")
        baseline = _baseline
    statistics = _snapshot().compare_to(baseline, group_by)[:top]
    rows = []
    for stat in statistics:
        frame = stat.traceback[0]
        rows.append(
            {
                "where": f"{frame.filename}:{frame.lineno}",
                "size_diff": stat.size_diff,
                "size": stat.size,
                "count_diff": stat.count_diff,
                "count": stat.count,
                "traceback": stat.traceback.format() if group_by == "traceback" else None,
            }
        )
    lines = [f"  {'grew by':>12} {'now':>12} {'+blocks':>8}  where"]
    lines += [
        f"  {row['size_diff']:>+12,} {row['size']:>12,} {row['count_diff']:>+8,}  {row['where']}"
        for row in rows
    ]
    return Report(rows, "\n".join(lines))


def heap_stop() -> Report:
    """Forget the baseline and stop ``tracemalloc`` if ``heap_snapshot()`` started it."""
    global _baseline, _started_by_us
    with _lock:
        _baseline = None
        stopped = _started_by_us and tracemalloc.is_tracing()
        if stopped:
            tracemalloc.stop()
        _started_by_us = False
    return Report(
        {"stopped_tracing": stopped},
        "tracemalloc stopped."
        if stopped
        else "Baseline dropped (tracemalloc was not started here).",
    )


def referrers(obj: object, limit: int = 20) -> Report:
    """What holds ``obj``: each referrer's type, and where a dict belongs (a module's
    globals, an instance's attributes). This session's own names and frames are left out."""
    here = inspect.currentframe()
    caller = here.f_back if here is not None else None
    own = {id(caller), id(caller.f_globals), id(caller.f_locals)} if caller is not None else set()
    del here, caller
    found = gc.get_referrers(obj)
    rows: list[dict[str, Any]] = []
    try:
        for holder in found:
            if id(holder) in own or holder is found:
                continue
            if (
                type(holder).__name__ == "frame"
                and getattr(holder, "f_code", None) is referrers.__code__
            ):
                continue
            rows.append(_describe_holder(holder, obj))
            if len(rows) >= limit:
                break
    finally:
        del found
    lines = [
        f"{len(rows)} referrer(s) of {type(obj).__qualname__} at {id(obj):#x} "
        "(this session's names left out):"
    ]
    lines += [f"  {row['type']}: {row['detail']}" for row in rows]
    return Report(rows, "\n".join(lines))


def _describe_holder(holder: object, target: object) -> dict[str, Any]:
    kind = type(holder).__qualname__
    detail = ""
    if isinstance(holder, dict):
        keys = [key for key, value in list(holder.items()) if value is target][:3]
        owner = _dict_owner(holder)
        detail = f"key {', '.join(map(repr, keys)) or '?'}" + (f" of {owner}" if owner else "")
    elif isinstance(holder, list | tuple | set | frozenset):
        detail = f"{len(holder)} items"
    elif kind == "frame":
        code = holder.f_code  # type: ignore[attr-defined]
        detail = f"local of {code.co_name} ({code.co_filename}:{holder.f_lineno})"  # type: ignore[attr-defined]
    else:
        detail = mask_locals({"value": holder})["value"]
    return {"type": kind, "id": id(holder), "detail": detail}


def _dict_owner(mapping: dict[Any, Any]) -> str | None:
    """A dict's owner, when it is a module's globals or an object's ``__dict__``."""
    for module in list(sys.modules.values()):
        if getattr(module, "__dict__", None) is mapping:
            return f"module {module.__name__} (globals)"
    for holder in gc.get_referrers(mapping):
        if getattr(holder, "__dict__", None) is mapping:
            return f"{type(holder).__qualname__} instance at {id(holder):#x} (attribute)"
    return None


register("heap", heap, "object counts and sizes by type, within a time budget")
register("heap_snapshot", heap_snapshot, "start tracemalloc if needed and take a baseline")
register("heap_diff", heap_diff, "allocations that grew since heap_snapshot(), by line")
register("heap_stop", heap_stop, "drop the baseline; stop tracemalloc if we started it")
register("referrers", referrers, "who holds an object (without keeping it alive)")
