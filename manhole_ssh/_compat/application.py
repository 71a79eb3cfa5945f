"""What every session's prompt_toolkit application can share with the others, and a
drawing it can skip: applied to the manhole's own applications only.

Key bindings and style. prompt_toolkit builds both for each application, thousands of
objects that the host's cyclic garbage collector walks at every full collection; neither
keeps state of its own, so every session uses the same ones.

Redraws while exiting. Once Enter has accepted the input, the final ("done") drawing
follows: a redraw still scheduled by the keystrokes would cost a whole render for nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.key_binding import KeyBindings, KeyBindingsBase, merge_key_bindings
from prompt_toolkit.key_binding.defaults import load_key_bindings
from prompt_toolkit.key_binding.key_processor import KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.renderer import Renderer
from prompt_toolkit.styles import (
    DEFAULT_ATTRS,
    Attrs,
    BaseStyle,
    DummyStyle,
    DynamicStyle,
    default_ui_style,
    merge_styles,
)

from . import has_private

__all__ = ["share_bindings_and_style", "skip_redraws_while_exiting", "with_default_ui_style"]


def share_bindings_and_style(app: Application[Any]) -> None:
    """Give ``app`` the default key bindings and the merged style every session shares."""
    what = "one set of default key bindings for every session"
    if has_private(app, "_default_bindings", what):
        app._default_bindings = _shared_default_key_bindings(_can_skip_cpr_drawings(app.renderer))
    if has_private(app, "_merged_style", "one merged style for every session"):
        app._merged_style = app.renderer.style = SharedMergedStyle(app)


def skip_redraws_while_exiting(app: Application[Any]) -> None:
    """Make ``app`` skip a redraw asked for once its input is accepted (its final drawing
    follows), as a keystroke's scheduled redraw would be."""
    if not has_private(app, "_redraw", "skipping redraws while exiting"):
        return
    draw = app._redraw

    def redraw_unless_exiting(render_as_done: bool = False) -> None:
        if render_as_done or app.future is None or not app.future.done():
            draw(render_as_done)

    app._redraw = redraw_unless_exiting  # type: ignore[method-assign]


def _can_skip_cpr_drawings(renderer: Renderer) -> bool:
    what = "skipping the drawing after a cursor-position answer that changes nothing"
    return all(
        has_private(renderer, name, what) for name in ("_last_screen", "_min_available_height")
    )


@functools.cache
def _shared_default_key_bindings(skip_cpr_drawings: bool) -> KeyBindingsBase:
    """prompt_toolkit's default key bindings (basic, emacs, vi: 582 bindings), made once.

    Every application makes its own: 2,900 of the 6,900 objects a session held, each
    one more for the host's cyclic garbage collector to walk at every full collection
    (with 100 sessions open, 800,000 objects and 300 ms a collection). The bindings keep
    no state of their own (it lives on the application), so every session can use the
    same ones.
    """
    if not skip_cpr_drawings:
        return load_key_bindings()
    return merge_key_bindings([load_key_bindings(), _cursor_position_bindings()])


def _cursor_position_bindings() -> KeyBindings:
    """prompt_toolkit's handling of the terminal's answer to "where is the cursor?", but
    drawing again only when the answer changes the drawing: the prompt was drawn without
    knowing its room (so without ptpython's status bar), or it has more room than drawn.

    The renderer asks at each prompt and draws without waiting (see
    :meth:`manhole_ssh.session.repl.Repl._request_cursor_position`); prompt_toolkit then draws
    the prompt a second time on every answer, a whole drawing for nothing once the screen
    has filled (after a few statements), where the answer never gives the prompt more room
    than it took.
    Whatever else changed has asked for its own drawing. (Bound after prompt_toolkit's own
    binding for the same key, this one wins.)
    """
    bindings = KeyBindings()

    @bindings.add(Keys.CPRResponse, save_before=lambda event: False)
    def _(event: KeyPressEvent) -> object:
        row = int(event.data[2:-1].split(";")[0])  # ESC [ row ; column R
        renderer = event.app.renderer
        drawn = renderer._last_screen
        drawn_knowing_the_room = renderer._min_available_height > 0  # ptpython's status bar
        renderer.report_absolute_cursor_row(row)
        if (
            drawn is not None
            and drawn_knowing_the_room
            and renderer._min_available_height <= drawn.height
        ):
            return NotImplemented  # the room below changes nothing drawn: no new drawing
        return None

    return bindings


@functools.lru_cache(maxsize=64)
def with_default_ui_style(style: BaseStyle) -> BaseStyle:
    return merge_styles([default_ui_style(), style])


class SharedMergedStyle(BaseStyle):
    """The style an application draws with (prompt_toolkit's default UI style, then the
    REPL's), from one merge shared by every session whose REPL has that style.

    Each application would merge its own: a ``Style`` of ~350 rules, each rule three
    objects (a tuple, a frozenset, an ``Attrs``) that the host's cyclic garbage collector
    walks at every full collection — a quarter of the objects a session holds. ptpython
    leaves out prompt_toolkit's default Pygments style (the third part of that merge), so
    the rules are the same.
    """

    def __init__(self, app: Any) -> None:
        self._app = app

    def _merged(self) -> BaseStyle:
        style = self._app.style or DummyStyle()
        while isinstance(style, DynamicStyle):  # ptpython's: the style chosen with F2
            style = style.get_style() or DummyStyle()
        return with_default_ui_style(style)

    def get_attrs_for_style_str(self, style_str: str, default: Attrs = DEFAULT_ATTRS) -> Attrs:
        return self._merged().get_attrs_for_style_str(style_str, default)

    @property
    def style_rules(self) -> list[tuple[str, str]]:
        return self._merged().style_rules

    def invalidation_hash(self) -> Any:
        return self._merged().invalidation_hash()
