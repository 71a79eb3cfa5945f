"""Two of prompt_toolkit's layout routines, made fast with the same results.

The REPL's cost per keystroke is prompt_toolkit's: drawing the layout, and finding the key
bindings of the focused part of it. Two routines took most of that time:

Column widths. ``VSplit._divide_widths`` hands out the free columns one at a time, round-robin by
weight, so a 100-column terminal costs hundreds of generator steps per split, twice per
split per redraw; ptpython's layout redraws six splits on every keystroke. The result
depends only on the width and the children's preferred dimensions, which between two
keystrokes are almost always the same, so it is remembered.

On a miss, prompt_toolkit's own method computes the widths (on a stand-in whose
children report the dimensions already measured), so results are always the ones
prompt_toolkit would give. The patch is process-wide, which is harmless for a host that
uses prompt_toolkit itself: same results, sooner.

Finding key bindings. For every key, twice, prompt_toolkit lists all the controls of the
layout, to look up the merged bindings of the focused window. :func:`fast_key_lookup`
gives one application a registry that lists them once per redraw instead: for a layout
without dynamic containers (ptpython's has none), the list cannot change in between.

Sizes asked again. While drawing, a split asks its children for their preferred size, and
each child, drawn in turn, asks its own children again: ptpython's windows were measured
44 times per drawing for 12 drawn. Within one drawing nothing they depend on changes, so
each container's answer for the same arguments is kept until the drawing ends.

Walking the layout. ``layout.walk`` is a recursive generator, so each node it yields
passes up through one generator per level of nesting; it runs several times per key
(to find the focused window's key bindings). The iterative walk below visits the same
nodes in the same order, asking each container for its children at the same moment.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import prompt_toolkit.application.application as application_module
import prompt_toolkit.layout as layout_package
from prompt_toolkit.application import Application
from prompt_toolkit.key_binding.key_bindings import KeyBindingsBase
from prompt_toolkit.layout import layout as layout_module
from prompt_toolkit.layout.containers import (
    ConditionalContainer,
    Container,
    FloatContainer,
    HSplit,
    VSplit,
    Window,
)
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.renderer import Renderer

__all__ = ["fast_key_lookup", "speed_up_layouts"]

_CACHE_LIMIT = 512
ORIGINAL_WALK = layout_module.walk  # prompt_toolkit's own, kept for comparison in tests
ORIGINAL_DIVIDE_WIDTHS = VSplit._divide_widths
ORIGINAL_RENDER = Renderer.render
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


def speed_up_layouts() -> None:
    """Install the faster routines (once); process-wide."""
    _install_width_cache()
    _install_size_memo()
    for module in (layout_module, layout_package, application_module):
        module.walk = _walk  # type: ignore[attr-defined]


class _RegistryListingControlsPerRedraw(application_module._CombinedRegistry):
    """prompt_toolkit's registry of an application's bindings, listing the layout's
    controls once per redraw rather than on every lookup."""

    def __init__(self, app: Application[Any]) -> None:
        super().__init__(app)
        self._listed_at = -1
        self._controls: list[Any] = []
        self._control_set: frozenset[Any] = frozenset()

    @property
    def _key_bindings(self) -> KeyBindingsBase:
        app = self.app
        if self._listed_at != app.render_counter:
            self._controls = list(app.layout.find_all_controls())
            self._control_set = frozenset(self._controls)
            self._listed_at = app.render_counter
        window, controls = app.layout.current_window, self._controls
        return self._cache.get(
            (window, self._control_set), lambda: self._create_key_bindings(window, controls)
        )


def fast_key_lookup(app: Application[Any]) -> None:
    """Give ``app`` (whose layout has no dynamic container) the faster registry."""
    app.key_processor._bindings = _RegistryListingControlsPerRedraw(app)


def _walk(container: Container, skip_hidden: bool = False) -> Iterator[Container]:
    """``prompt_toolkit.layout.layout.walk`` without a generator per level: depth first,
    a container before its children; with ``skip_hidden``, hidden conditional containers
    are left out with everything in them."""
    pending = [container]
    while pending:
        node = pending.pop()
        if skip_hidden and isinstance(node, ConditionalContainer) and not node.filter():
            continue
        yield node
        pending.extend(reversed(list(node.get_children())))


def _install_width_cache() -> None:
    """Replace ``VSplit._divide_widths`` with a memoized version (once)."""
    if getattr(VSplit._divide_widths, "_manhole_memoized", False):
        return
    original: Callable[[Any, int], list[int] | None] = ORIGINAL_DIVIDE_WIDTHS
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


# The sizes measured in the drawing under way, by thread: a host may draw prompt_toolkit
# applications of its own in other threads at the same time.
_drawing = threading.local()
SIZED_CONTAINERS = (Window, HSplit, VSplit, FloatContainer, ConditionalContainer)


def _remembered_in_drawing(method: Callable[..., Dimension]) -> Callable[..., Dimension]:
    name = method.__name__

    @functools.wraps(method)
    def remembered(self: Container, *arguments: int) -> Dimension:
        sizes: dict[tuple[Any, ...], Dimension] | None = getattr(_drawing, "sizes", None)
        if sizes is None:  # outside a drawing (a key binding measuring): as prompt_toolkit
            return method(self, *arguments)
        key = (id(self), name, *arguments)
        try:
            return sizes[key]
        except KeyError:
            size = sizes[key] = method(self, *arguments)
            return size

    remembered._manhole_memoized = True  # type: ignore[attr-defined]
    return remembered


def _install_size_memo() -> None:
    """Remember each container's preferred sizes for the length of one drawing (once)."""
    if getattr(Renderer.render, "_manhole_memoized", False):
        return
    render = ORIGINAL_RENDER

    def render_remembering_sizes(
        self: Renderer, app: Application[Any], layout: Any, is_done: bool = False
    ) -> None:
        outer = getattr(_drawing, "sizes", None)
        _drawing.sizes = {}
        try:
            render(self, app, layout, is_done)
        finally:
            _drawing.sizes = outer

    render_remembering_sizes._manhole_memoized = True  # type: ignore[attr-defined]
    Renderer.render = render_remembering_sizes  # type: ignore[method-assign]
    for container_class in SIZED_CONTAINERS:
        for name in ("preferred_width", "preferred_height"):
            method = vars(container_class)[name]
            setattr(container_class, name, _remembered_in_drawing(method))
