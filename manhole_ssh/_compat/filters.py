"""Letting go of the ``a & b`` / ``a | b`` filters a session left on long-lived filters.

prompt_toolkit caches a combination on its left operand, forever. When that operand is a
module-level filter (``is_done``, ``has_focus``…, or its inverse) and the right one belongs
to a session's REPL, the cache keeps the whole REPL alive: 2.4 MB per ended session,
measured. When a session ends, the combinations made since it started are forgotten; those
that were there before (the host's own, ptpython's made at import) stay, the same objects.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable, Iterator

from prompt_toolkit.filters import Condition, Filter

from . import has_private

__all__ = ["CombinedFilters"]


@functools.cache
def _long_lived_filters() -> tuple[Filter, ...]:
    """prompt_toolkit's and ptpython's module-level filters."""
    found: dict[int, Filter] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(("prompt_toolkit", "ptpython")) and module is not None:
            for value in list(vars(module).values()):
                if isinstance(value, Filter):
                    found[id(value)] = value
    return tuple(found.values())


@functools.cache
def _has_caches() -> bool:
    sample, what = Condition(lambda: True), "forgetting the filters an ended session combined"
    return all(has_private(sample, name, what) for name in ("_and_cache", "_or_cache"))


def _caches(kept: Callable[[Filter], bool]) -> Iterator[dict[Filter, Filter]]:
    """The combination caches of the module-level filters, of their inverses, and of every
    combination they keep (``kept(other)``), which lives as long: transitively. The caller
    may drop entries from a cache before asking for the next one."""
    pending: list[Filter] = list(_long_lived_filters())
    seen: set[Filter] = set()
    while pending:
        long_lived = pending.pop()
        if long_lived in seen:
            continue
        seen.add(long_lived)
        inverted = getattr(long_lived, "_invert_result", None)  # ``~is_done``, kept
        if inverted is not None:
            pending.append(inverted)
        for cache in (long_lived._and_cache, long_lived._or_cache):
            yield cache
            pending.extend(combined for other, combined in list(cache.items()) if kept(other))


class CombinedFilters:
    """The combinations cached on long-lived filters when a session starts; :meth:`forget_new`
    drops those made since, once the session has ended.

    Long-lived filters are the module-level ones (``is_done``), their inverses, and the
    combinations cached on them that stay (``has_completions & ~is_done``, made by the host or
    by ptpython): a session's own combinations with those are forgotten too. The filters
    that were there are held weakly: a session that starts before the previous one has let
    go would otherwise keep the previous one's filters, and with them its REPL, alive.
    """

    def __init__(self) -> None:
        self._before: weakref.WeakSet[Filter] = weakref.WeakSet()
        if _has_caches():
            for cache in _caches(kept=lambda other: True):
                self._before.update(list(cache))

    def forget_new(self) -> None:
        if not _has_caches():
            return
        for cache in _caches(kept=self._before.__contains__):
            for other in [other for other in list(cache) if other not in self._before]:
                cache.pop(other, None)
