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
from collections.abc import Iterator

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


def _caches() -> Iterator[dict[Filter, Filter]]:
    for module_level in _long_lived_filters():
        inverted = getattr(module_level, "_invert_result", None)  # ``~is_done``, kept
        for long_lived in (module_level, inverted) if inverted is not None else (module_level,):
            yield long_lived._and_cache
            yield long_lived._or_cache


class CombinedFilters:
    """The combinations cached on long-lived filters when a session starts; :meth:`forget_new`
    drops those made since, once the session has ended."""

    def __init__(self) -> None:
        self._before: set[Filter] = set()
        if _has_caches():
            for cache in _caches():
                self._before.update(cache)

    def forget_new(self) -> None:
        if not _has_caches():
            return
        for cache in _caches():
            for other in [other for other in list(cache) if other not in self._before]:
                cache.pop(other, None)
