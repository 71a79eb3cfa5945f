"""prompt_toolkit's drawing and key lookup, made faster for one application: the manhole's.

The REPL's cost per keystroke is prompt_toolkit's: drawing the layout, and finding the key
bindings of the focused part of it. :func:`speed_up` gives an application whose layout is
built (ptpython's) faster versions of four routines, by changing the class of its own
renderer, layout and containers to subclasses defined here (which add no state: nothing
else about those objects changes). prompt_toolkit's classes, and every other application
in the process, are left as they are.

Column widths. ``VSplit._divide_widths`` hands out the free columns one at a time, round-robin
by weight, so a 100-column terminal costs hundreds of generator steps per split, twice per
split per redraw; ptpython's layout redraws six splits on every keystroke. The result depends
only on the width and the children's preferred dimensions, which between two keystrokes are
almost always the same, so it is remembered, by those values. On a miss, prompt_toolkit's
own method computes the widths (on a stand-in whose children report the dimensions already
measured), so results are always the ones prompt_toolkit would give.

Sizes asked again. While drawing, a split asks its children for their preferred size, and
each child, drawn in turn, asks its own children again: ptpython's windows were measured
44 times per drawing for 12 drawn. Within one drawing nothing they depend on changes, so
each container's answer for the same arguments is kept until that drawing ends, in a
table keyed by the container itself (not its ``id()``, which a container made and freed
while drawing could pass on to another).

Walking the layout. ``Layout.walk`` is a recursive generator, so each node it yields passes
up through one generator per level of nesting. The iterative walk below visits the same
nodes in the same order, asking each container for its children at the same moment.

Finding key bindings. For every key, twice, prompt_toolkit lists all the controls of the
layout, to look up the merged bindings of the focused window. The application's registry is
replaced with one that lists them once per redraw instead: for a layout without dynamic
containers (ptpython's has none), the list cannot change in between.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import prompt_toolkit.application.application as application_module
from prompt_toolkit.application import Application
from prompt_toolkit.key_binding.key_bindings import KeyBindingsBase
from prompt_toolkit.layout import Layout
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

from . import has_private

__all__ = ["speed_up", "walk"]

_CACHE_LIMIT = 512
_WidthsKey = tuple[int, tuple[tuple[int, int, int, int], ...]]

# The sizes measured in the drawing under way in this thread, by (container, method,
# arguments); set only while one of this module's renderers draws.
_drawing = threading.local()


def speed_up(app: Application[Any]) -> None:
    """Make ``app`` (its layout built, without dynamic containers) draw and find its key
    bindings faster, with the same results."""
    app.renderer.__class__ = _RendererRememberingSizes
    app.layout.__class__ = _LayoutWalkingIteratively
    for container in app.layout.walk():
        if isinstance(container, _SIZED):
            container.__class__ = _remembering_sizes(type(container))  # type: ignore[assignment]
    registry_class, what = _registry_class(), "listing the controls once per redraw"
    if registry_class is None or not has_private(app.key_processor, "_bindings", what):
        return
    registry = registry_class(app)
    if has_private(registry, "_cache", what):
        app.key_processor._bindings = registry


def walk(container: Container, skip_hidden: bool = False) -> Iterator[Container]:
    """``prompt_toolkit.layout.walk`` without a generator per level: depth first, a
    container before its children; with ``skip_hidden``, hidden conditional containers
    are left out with everything in them."""
    pending = [container]
    while pending:
        node = pending.pop()
        if skip_hidden and isinstance(node, ConditionalContainer) and not node.filter():
            continue
        yield node
        pending.extend(reversed(list(node.get_children())))


class _RendererRememberingSizes(Renderer):
    """prompt_toolkit's renderer, keeping the sizes measured during each drawing."""

    def render(self, app: Application[Any], layout: Layout, is_done: bool = False) -> None:
        outer = getattr(_drawing, "sizes", None)
        _drawing.sizes = {}
        try:
            super().render(app, layout, is_done)
        finally:
            _drawing.sizes = outer  # dropped: no container outlives its drawing in here


class _LayoutWalkingIteratively(Layout):
    def walk(self) -> Iterator[Container]:
        return walk(self.container)


def _remembered(container: Container, method: Callable[..., Dimension], *arguments: int) -> Any:
    sizes: dict[tuple[Any, ...], Dimension] | None = getattr(_drawing, "sizes", None)
    if sizes is None:  # outside a drawing (a key binding measuring): as prompt_toolkit
        return method(container, *arguments)
    key = (container, method, *arguments)
    try:
        return sizes[key]
    except KeyError:
        size = sizes[key] = method(container, *arguments)
        return size


@functools.cache
def _remembering_sizes(base: type[Container]) -> type[Container]:
    """A subclass of ``base`` whose preferred sizes are measured once per drawing."""
    width, height = base.preferred_width, base.preferred_height

    def preferred_width(self: Container, max_available_width: int) -> Dimension:
        return _remembered(self, width, max_available_width)

    def preferred_height(self: Container, width: int, max_available_height: int) -> Dimension:
        return _remembered(self, height, width, max_available_height)

    namespace = {"preferred_width": preferred_width, "preferred_height": preferred_height}
    if issubclass(base, VSplit) and _can_remember_widths():
        namespace["_divide_widths"] = _divide_widths_remembered
    return type(f"{base.__name__}RememberingSizes", (base,), namespace)


def _can_remember_widths() -> bool:
    return has_private(VSplit, "_divide_widths", "remembering column widths") and has_private(
        VSplit([]), "_all_children", "remembering column widths"
    )


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


# Widths by (width, children's dimensions): values only, so any split may share them.
_widths: dict[_WidthsKey, list[int] | None] = {}


def _divide_widths_remembered(self: VSplit, width: int) -> list[int] | None:
    children = self._all_children
    if not children:
        return []
    dimensions = [child.preferred_width(width) for child in children]
    key = (width, tuple((d.min, d.max, d.preferred, d.weight) for d in dimensions))
    try:
        sizes = _widths[key]
    except KeyError:
        sizes = VSplit._divide_widths(_StandIn(dimensions), width)  # type: ignore[arg-type]
        if len(_widths) >= _CACHE_LIMIT:
            _widths.clear()
        _widths[key] = sizes
    return None if sizes is None else list(sizes)


_SIZED = (Window, HSplit, VSplit, FloatContainer, ConditionalContainer)


@functools.cache
def _registry_class() -> type[Any] | None:
    """prompt_toolkit's registry of an application's bindings, listing the layout's
    controls once per redraw rather than on every lookup (``None`` if this
    prompt_toolkit has no such registry to extend)."""
    what = "listing the controls once per redraw"
    if not (
        has_private(application_module, "_CombinedRegistry", what)
        and has_private(application_module._CombinedRegistry, "_create_key_bindings", what)
    ):
        return None

    class RegistryListingControlsPerRedraw(application_module._CombinedRegistry):
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

    return RegistryListingControlsPerRedraw
