"""manhole_ssh._compat: the faster prompt_toolkit routines give prompt_toolkit's own
results, its size memo cannot mistake one container for another, and every private name
of another library that the package uses is listed here and exists in the installed one."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import io
import itertools
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.application.current import set_app
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.layout import ConditionalContainer, VSplit, Window
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.layout import walk
from prompt_toolkit.output import DummyOutput
from ptpython.python_input import PythonInput

from manhole_ssh._compat import has_private, layout, with_globals
from manhole_ssh._compat import ptpython as compat_ptpython
from manhole_ssh.session import repl as repl_module
from manhole_ssh.session.repl import Repl

PACKAGE = Path(repl_module.__file__).parent.parent  # the whole package, not session/


def test_walk_visits_what_prompt_toolkit_visits_in_the_same_order() -> None:
    with create_pipe_input() as pipe:
        python = PythonInput(input=pipe, output=DummyOutput())
        root = python.app.layout.container
        with set_app(python.app):
            for skip_hidden in (False, True):
                ours = list(layout.walk(root, skip_hidden=skip_hidden))
                theirs = list(walk(root, skip_hidden=skip_hidden))
                assert ours == theirs
                assert len(ours) > 10


def test_memoized_widths_are_prompt_toolkit_widths() -> None:
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
            expected = split._divide_widths(width)
            split.__class__ = layout._remembering_sizes(VSplit)
            assert split._divide_widths(width) == expected
            assert split._divide_widths(width) == expected  # from the cache this time


def test_hidden_containers_are_skipped_with_their_children() -> None:
    hidden = ConditionalContainer(VSplit([Window(), Window()]), filter=False)
    root = VSplit([Window(), hidden, Window()])
    assert list(layout.walk(root, skip_hidden=True)) == list(walk(root, skip_hidden=True))
    assert len(list(layout.walk(root))) == 7


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def _draw_a_session(monkeypatch: pytest.MonkeyPatch, faster: bool) -> str:
    """What ptpython writes to a 60x16 terminal while a statement is edited: lines that
    wrap, a second line, the F2 options sidebar opened and closed, then the final drawing."""
    if not faster:
        monkeypatch.setattr(repl_module, "speed_up", lambda app: None)
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


def test_the_faster_application_draws_what_prompt_toolkit_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = asyncio.run(_draw_a_session(monkeypatch, faster=True))
    theirs = asyncio.run(_draw_a_session(monkeypatch, faster=False))
    assert "Complete while typing" in ours  # the sidebar was drawn too
    assert ours == theirs


def test_a_container_made_while_drawing_is_not_taken_for_one_freed_before() -> None:
    """Sizes are remembered by container, for one drawing: a container made and freed while
    drawing cannot pass its size on to the next one made (which CPython often puts at the
    same address, i.e. gives the same ``id()``)."""
    faster = layout._remembering_sizes(Window)
    layout._drawing.sizes = {}
    try:
        for width in range(1, 50):
            made = Window(width=width)
            made.__class__ = faster
            assert made.preferred_width(100).preferred == width
            del made
    finally:
        layout._drawing.sizes = None


# Every private name of another library the package uses (read, set, or overridden in a
# subclass), and where it lives. pyproject.toml bounds the versions of the libraries that
# have them: a new release must pass this test before the bound is raised.
PRIVATE_NAMES = {
    "prompt_toolkit.application.application": ["_CombinedRegistry"],
    "prompt_toolkit.application.application:_CombinedRegistry": [
        "_cache",
        "_create_key_bindings",
        "_key_bindings",
    ],
    "prompt_toolkit.application.application:Application": [
        "_default_bindings",
        "_merged_style",
        "_on_resize",
        "_redraw",
    ],
    "prompt_toolkit.key_binding.key_processor:KeyProcessor": ["_bindings"],
    "prompt_toolkit.layout.containers:VSplit": ["_all_children", "_divide_widths"],
    "prompt_toolkit.filters.base:Filter": ["_and_cache", "_invert_result", "_or_cache"],
    "prompt_toolkit.renderer:Renderer": ["_last_screen", "_min_available_height"],
    "ptpython.python_input:PythonInput": [
        "_accept_handler",
        "_completer",
        "_current_style",
        "_generate_style",
        "_on_input_timeout",
    ],
    "ptpython.repl:PythonRepl": ["_get_output_printer", "_handle_exception", "_show_result"],
    "ptpython.printer:OutputPrinter": ["_print_formatted_text"],
    "ptpython.completer:PythonCompleter": ["_complete_python_while_typing", "_jedi_completer"],
    "jedi.api:Script": ["_inference_state"],
    "asyncssh.connection:SSHServerConnection": ["_validate_openssh_certificate"],
    "asyncssh.channel:SSHServerChannel": ["_process_env_request"],  # channel.py: env refused
    "asyncssh.public_key:SSHOpenSSHCertificate": ["_key_id", "_serial"],
    "sys": ["_current_frames", "_getframe"],
    # debug/tasks.py: what a task waits on, and who awaits it, before Python 3.14
    "asyncio.tasks:Task": ["_fut_waiter"],
    "asyncio.tasks:_GatheringFuture": ["_children"],
    "pydoc:Helper": ["_gettopic"],
    "asyncio.selector_events:BaseSelectorEventLoop": [
        "_add_reader",
        "_csock",
        "_internal_fds",
        "_make_self_pipe",
        "_read_from_self",
        "_selector",
        "_ssock",
        "_transports",
    ],
    "asyncio.selector_events:_SelectorTransport": ["_sock"],
    "collections:namedtuple": ["_fields", "_replace"],  # documented API of named tuples
}


# Functions given an attribute's name as a string: which argument.
NAME_TAKERS = {"getattr": 1, "hasattr": 1, "has_private": 1, "_method_with_globals": 0}


def _private_names_used() -> set[str]:
    """``x._name`` (and ``getattr(x, "_name")``) in the package where the package itself
    defines no ``_name``, and the private methods its classes override."""
    own: set[str] = set()
    used: set[str] = set()
    trees = [ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                own.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and isinstance(node.ctx, ast.Store)
            ):
                own.add(node.attr)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.keyword) and node.arg:
                used.add(node.arg)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in NAME_TAKERS
                and isinstance(node.args[NAME_TAKERS[node.func.id]], ast.Constant)
            ):
                used.add(str(node.args[NAME_TAKERS[node.func.id]].value))
            elif isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name | ast.Attribute) for base in node.bases
            ):
                used.update(item.name for item in node.body if isinstance(item, ast.FunctionDef))
    private = {name for name in used if re.fullmatch(r"_[A-Za-z]\w*", name)}
    listed = {name for names in PRIVATE_NAMES.values() for name in names}
    return {name for name in private if name not in own or name in listed}


def _exists(where: str, name: str) -> bool:
    module, _, qualified = where.partition(":")
    owner: Any = importlib.import_module(module)
    for part in filter(None, qualified.split(".")):
        owner = getattr(owner, part)
    if hasattr(owner, name):
        return True
    # An attribute its instances get (or a parameter): in the source of the class or a base.
    classes = owner.__mro__ if inspect.isclass(owner) else (owner,)
    return any(name in inspect.getsource(cls) for cls in classes if cls is not object)


def test_every_private_name_used_is_listed() -> None:
    listed = {name for names in PRIVATE_NAMES.values() for name in names}
    assert _private_names_used() == listed


@pytest.mark.parametrize(
    ("where", "name"), [(where, name) for where, names in PRIVATE_NAMES.items() for name in names]
)
def test_each_private_name_exists_in_the_installed_version(where: str, name: str) -> None:
    assert _exists(where, name), f"{where} has no {name}"


def _library_helper() -> int:
    return 1


def _library_function() -> int:
    return _library_helper()


def test_a_missing_private_name_leaves_the_stock_behaviour_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="manhole_ssh.compat")
    faster = with_globals(_library_function, "a speed-up", _library_helper=lambda: 7)
    assert faster is not None and faster() == 7
    assert _library_function() == 1  # the library's own is untouched
    assert with_globals(_library_function, "a speed-up", sorted=sorted) is None
    assert "no longer calls sorted in this version: a speed-up" in caplog.text
    assert not has_private(VSplit, "_gone_in_this_version", "remembering widths")
    assert "VSplit has no _gone_in_this_version in this version: remembering widths" in caplog.text


def test_completion_is_refused_rather_than_run_unsafely_by_a_jedi_without_the_switch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A jedi script without ``_inference_state``: no completion, and a log line."""
    monkeypatch.setattr(
        compat_ptpython, "get_jedi_script_from_document", lambda *arguments: object()
    )
    namespace = {"probe": 1}
    completer = compat_ptpython.CompleterNotRunningHostCode(
        lambda: namespace, lambda: namespace, lambda: False
    )
    event = CompleteEvent(completion_requested=True)
    assert list(completer.get_completions(Document("probe.re"), event)) == []
    assert compat_ptpython.signatures(Document("print("), namespace, namespace) == []
    assert "_inference_state" in caplog.text
