"""The faster prompt_toolkit layout routines give prompt_toolkit's own results."""

from __future__ import annotations

import itertools

from prompt_toolkit.application.current import set_app
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.layout import ConditionalContainer, VSplit, Window
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.output import DummyOutput
from ptpython.python_input import PythonInput

from manhole_ssh import layoutspeed


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
