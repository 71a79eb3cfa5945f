"""What a host that uses prompt_toolkit, ptpython and jedi itself can observe of them: run
in the host (tests/host_app.py --uses-prompt-toolkit), before and after a session."""

from __future__ import annotations

import inspect
import io
import sys
from typing import Any

import jedi
import jedi.settings
import ptpython.repl  # noqa: F401 (every ptpython module a REPL imports, as a host's would)
from prompt_toolkit.application import Application
from prompt_toolkit.filters import Condition, Filter, has_focus, is_done
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.layout import HSplit, Layout, VSplit, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output
from ptpython.python_input import PythonInput

LIBRARIES = ("prompt_toolkit", "ptpython", "jedi")

# The host's own ptpython REPL (an embedded one, say), made before any session: its layout
# leaves combinations on prompt_toolkit's module-level filters that live as long.
with create_pipe_input() as _pipe:
    host_repl = PythonInput(input=_pipe, output=DummyOutput())

# The host's own combinations of prompt_toolkit's module-level filters, made before a session.
host_filter = Condition(lambda: True)
host_combinations = (is_done & host_filter, has_focus("host") | host_filter, ~is_done & host_filter)


class _Probe:
    touched = 0

    @property
    def costly(self) -> list[int]:
        _Probe.touched += 1
        return [1]


def _behaviour(value: object) -> bool:
    """A function, class, method or other descriptor (property…): not a counter or a cache."""
    return callable(value) or hasattr(value, "__get__")


def _names(owner: Any) -> dict[str, int]:
    return {name: id(value) for name, value in list(vars(owner).items()) if _behaviour(value)}


def snapshot() -> dict[str, Any]:
    """Every function, class attribute and module global of the three libraries (by
    identity), jedi's settings (by value), the filter caches, and what the host's own use of
    jedi and prompt_toolkit gives."""
    state: dict[str, Any] = {}
    for name, module in sorted(sys.modules.items()):
        if module is None or not name.startswith(LIBRARIES):
            continue
        state[name] = _names(module)  # functions (walk…), classes
        for global_name, value in list(vars(module).items()):
            if inspect.isclass(value) and value.__module__ == name:
                state[f"{name}.{value.__qualname__}"] = _names(value)  # methods, attributes
            if isinstance(value, Filter):  # is_done…: its cached combinations
                pairs = {
                    (id(a), id(b))
                    for c in (value._and_cache, value._or_cache)
                    for a, b in c.items()
                }
                state[f"{name}.{global_name} & |"] = pairs
    state["jedi.settings values"] = {
        name: repr(value)
        for name, value in vars(jedi.settings).items()
        if not name.startswith("__")
    }
    state["behaviour"] = behaviour()
    return state


def behaviour() -> dict[str, Any]:
    """The host's own completion (jedi, evaluating properties as its default says) and
    drawing (prompt_toolkit, a layout of splits)."""
    _Probe.touched = 0
    names = [c.name for c in jedi.Interpreter("probe.costly.", [{"probe": _Probe()}]).complete()]
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    output = Vt100_Output(terminal, lambda: _size(), term="xterm")
    windows = [Window(FormattedTextControl(f"column {n}"), width=n + 5) for n in range(4)]
    app: Application[None] = Application(
        layout=Layout(HSplit([VSplit(windows), Window(FormattedTextControl("below"))])),
        output=output,
    )
    app.renderer.render(app, app.layout)
    return {
        "jedi names": names,
        "properties evaluated": _Probe.touched,
        "drawn": terminal.getvalue(),
        "combinations": [id(is_done & host_filter), id(~is_done & host_filter)],
    }


def _size() -> Any:
    from prompt_toolkit.data_structures import Size

    return Size(rows=10, columns=40)


def differences(before: dict[str, Any]) -> list[str]:
    """What changed since ``before`` (modules imported since are new, not changes)."""
    after = snapshot()
    changed = []
    for key, was in before.items():
        now = after.get(key)
        if isinstance(was, set) and isinstance(now, set):
            # Each new application of the host's adds its own; those there before stay.
            changed += [f"{key}: lost {pair}" for pair in sorted(was - now)]
        elif isinstance(was, dict) and isinstance(now, dict):
            changed += [f"{key}.{name}" for name in was if was[name] != now.get(name)]
        elif was != now:
            changed.append(f"{key}: {was!r} -> {now!r}")
    return changed
