"""The faster prompt_toolkit layout routines give prompt_toolkit's own results."""

from __future__ import annotations

import asyncio
import io
import itertools

import pytest
from prompt_toolkit.application.current import set_app
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.layout import ConditionalContainer, VSplit, Window
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.renderer import Renderer
from ptpython.python_input import PythonInput

from manhole_ssh import layoutspeed
from manhole_ssh.repl import Repl


def test_walk_visits_what_prompt_toolkit_visits_in_the_same_order() -> None:
    with create_pipe_input() as pipe:
        python = PythonInput(input=pipe, output=DummyOutput())
        root = python.app.layout.container
        with set_app(python.app):
            for skip_hidden in (False, True):
                ours = list(layoutspeed._walk(root, skip_hidden=skip_hidden))
                theirs = list(layoutspeed.ORIGINAL_WALK(root, skip_hidden=skip_hidden))
                assert ours == theirs
                assert len(ours) > 10


def test_memoized_widths_are_prompt_toolkit_widths() -> None:
    layoutspeed.speed_up_layouts()
    dimensions = [
        Dimension(),
        Dimension.exact(3),
        Dimension(min=2, max=10, preferred=5),
        Dimension(min=1, preferred=20, weight=3),
        Dimension(max=4, weight=2),
    ]
    for chosen in itertools.combinations(dimensions, 3):
        for width in (0, 1, 7, 30, 100):
            split = VSplit([Window(width=dimension) for dimension in chosen])
            expected = layoutspeed.ORIGINAL_DIVIDE_WIDTHS(split, width)
            assert split._divide_widths(width) == expected
            assert split._divide_widths(width) == expected  # from the cache this time


def test_hidden_containers_are_skipped_with_their_children() -> None:
    hidden = ConditionalContainer(VSplit([Window(), Window()]), filter=False)
    root = VSplit([Window(), hidden, Window()])
    assert list(layoutspeed._walk(root, skip_hidden=True)) == list(
        layoutspeed.ORIGINAL_WALK(root, skip_hidden=True)
    )
    assert len(list(layoutspeed._walk(root))) == 7


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def _draw_a_session(monkeypatch: pytest.MonkeyPatch, remember_sizes: bool) -> str:
    """What ptpython writes to a 60x16 terminal while a statement is edited: lines that
    wrap, a second line, the F2 options sidebar opened and closed, then the final drawing."""
    layoutspeed.speed_up_layouts()
    if not remember_sizes:
        monkeypatch.setattr(Renderer, "render", layoutspeed.ORIGINAL_RENDER)
    terminal = _Terminal()
    repl = Repl({"x": 1}, terminal, term="xterm", columns=60, rows=16)
    app = repl.python.app
    reading = asyncio.ensure_future(repl.read())
    for _ in range(1000):
        if app.is_running and app.render_counter:
            break
        await asyncio.sleep(0.001)
    keys: list[KeyPress] = []
    parser = Vt100Parser(keys.append)

    def type_and_draw() -> None:
        app.key_processor.feed_multiple(keys)
        app.key_processor.process_keys()
        app._redraw()

    for typed in ("def f(x):\r", "    return [x" + ", x" * 30, "\x1bOQ", "\x1b[B\x1b[B", "\x1bOQ"):
        keys.clear()
        parser.feed(typed)
        # In the application's context, as when it reads its input itself.
        app.context.copy().run(type_and_draw)
    repl.close()  # Ctrl-D: the final ("done") drawing
    assert await asyncio.wait_for(reading, 10) is None
    return terminal.getvalue()


def test_remembered_sizes_draw_what_prompt_toolkit_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = asyncio.run(_draw_a_session(monkeypatch, remember_sizes=True))
    theirs = asyncio.run(_draw_a_session(monkeypatch, remember_sizes=False))
    assert "Complete while typing" in ours  # the sidebar was drawn too
    assert ours == theirs
