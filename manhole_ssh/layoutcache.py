"""Memoized column widths for prompt_toolkit's ``VSplit``: a third of each redraw, before.

``VSplit._divide_widths`` hands out the free columns one at a time, round-robin by
weight, so a 100-column terminal costs hundreds of generator steps per split, twice per
split per redraw; ptpython's layout redraws six splits on every keystroke. The result
depends only on the width and the children's preferred dimensions, which between two
keystrokes are almost always the same, so it is remembered.

On a miss, prompt_toolkit's own method computes the widths (on a stand-in whose
children report the dimensions already measured), so results are always the ones
prompt_toolkit would give. The patch is process-wide, which is harmless for a host that
uses prompt_toolkit itself: same results, sooner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prompt_toolkit.layout.containers import VSplit
from prompt_toolkit.layout.dimension import Dimension

__all__ = ["install_width_cache"]

_CACHE_LIMIT = 512
_Key = tuple[int, tuple[tuple[int, int, int, int], ...]]


class _Measured:
    """A child whose preferred width was measured already."""

    def __init__(self, dimension: Dimension) -> None:
        self._dimension = dimension

    def preferred_width(self, max_available_width: int) -> Dimension:
        return self._dimension


class _StandIn:
    """What ``VSplit._divide_widths`` reads of its split: the children."""

    def __init__(self, dimensions: list[Dimension]) -> None:
        self._all_children = [_Measured(dimension) for dimension in dimensions]


def install_width_cache() -> None:
    """Replace ``VSplit._divide_widths`` with a memoized version (once)."""
    original: Callable[[Any, int], list[int] | None] = VSplit._divide_widths
    if getattr(original, "_manhole_memoized", False):
        return
    cache: dict[_Key, list[int] | None] = {}

    def divide_widths(self: VSplit, width: int) -> list[int] | None:
        children = self._all_children
        if not children:
            return []
        dimensions = [child.preferred_width(width) for child in children]
        key = (width, tuple((d.min, d.max, d.preferred, d.weight) for d in dimensions))
        try:
            sizes = cache[key]
        except KeyError:
            sizes = original(_StandIn(dimensions), width)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = sizes
        return None if sizes is None else list(sizes)

    divide_widths._manhole_memoized = True  # type: ignore[attr-defined]
    VSplit._divide_widths = divide_widths  # type: ignore[method-assign]
