"""ptpython for the manhole: its styles converted once for every session, and completion
and signatures that never run host code, without changing ptpython or jedi for the host.

Styles. ptpython converts every Pygments style for each new REPL (35 ms of a session's
start), and merges the chosen code and UI styles into a new style each time. The converted
styles are immutable, so every session shares one conversion and one merge (and every cache
of styles downstream, which is by style object). :class:`PythonInputForManhole` runs
ptpython's own ``__init__`` and ``_generate_style``, finding the shared versions in place
of ptpython's module functions (see :func:`~manhole_ssh._compat.with_globals`).

Completion. While the user only types, jedi would call properties and ``__getitem__`` of
live objects (jedi's ``allow_unsafe_interpreter_executions``, on by default for the whole
process). The manhole's jedi scripts are made with that switched off on the script itself;
jedi's settings stay as the host has them. If this jedi or ptpython no longer has the names
that makes it possible, jedi completion and signatures are refused (a log line says so),
not run unsafely. Evaluating completion stays available on request (ptpython's F2 menu:
"Dictionary completion").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.styles import BaseStyle
from ptpython.completer import JediCompleter, PythonCompleter
from ptpython.python_input import PythonInput
from ptpython.signatures import Signature, get_signatures_using_jedi
from ptpython.style import generate_style, get_all_code_styles, get_all_ui_styles
from ptpython.utils import get_jedi_script_from_document

from . import has_private, log, with_globals

__all__ = ["CompleterNotRunningHostCode", "PythonInputForManhole", "signatures"]

_SAFE_COMPLETION = "jedi completion and signatures without running host code"


@functools.cache
def _code_styles() -> dict[str, BaseStyle]:
    return get_all_code_styles()


@functools.cache
def _ui_styles() -> dict[str, BaseStyle]:
    return get_all_ui_styles()


def _shared_code_styles() -> dict[str, BaseStyle]:
    """The converted styles, shared; the dict is the REPL's own (ptpython adds to it)."""
    return dict(_code_styles())


def _shared_ui_styles() -> dict[str, BaseStyle]:
    return dict(_ui_styles())


_shared_merge = functools.lru_cache(maxsize=64)(generate_style)


def _script_not_running_host_code(
    document: Document, locals: dict[str, Any], globals: dict[str, Any]
) -> Any:
    """ptpython's jedi script for ``document``, with jedi's unsafe executions off for this
    script only; ``None`` (no completion) if this jedi has no such switch."""
    script = get_jedi_script_from_document(document, locals, globals)
    if script is None:
        return None
    if not has_private(script, "_inference_state", _SAFE_COMPLETION):
        return None
    state = script._inference_state
    if not has_private(state, "allow_unsafe_executions", _SAFE_COMPLETION):
        return None
    state.allow_unsafe_executions = False
    return script


def _no_signatures(document: Document, locals: Any, globals: Any) -> list[Signature]:
    return []


signatures: Callable[[Document, dict[str, Any], dict[str, Any]], list[Signature]] = (
    with_globals(
        get_signatures_using_jedi,
        _SAFE_COMPLETION,
        get_jedi_script_from_document=_script_not_running_host_code,
    )
    or _no_signatures
)


class _JediCompleterNotRunningHostCode(JediCompleter):
    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        return _jedi_completions(self, document, complete_event)


def _no_completions(self: Any, document: Document, event: CompleteEvent) -> Iterable[Completion]:
    return ()


_jedi_completions: Callable[..., Iterable[Completion]] = (
    with_globals(
        JediCompleter.get_completions,
        _SAFE_COMPLETION,
        get_jedi_script_from_document=_script_not_running_host_code,
    )
    or _no_completions
)


class CompleterNotRunningHostCode(PythonCompleter):
    """ptpython's completer, its jedi completions made without running host code."""

    def __init__(
        self,
        get_globals: Callable[[], dict[str, Any]],
        get_locals: Callable[[], dict[str, Any]],
        enable_dictionary_completion: Callable[[], bool],
    ) -> None:
        super().__init__(get_globals, get_locals, enable_dictionary_completion)
        self._safe = has_private(self, "_jedi_completer", _SAFE_COMPLETION)
        if self._safe:
            self._jedi_completer = _JediCompleterNotRunningHostCode(get_globals, get_locals)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        if self._safe:
            yield from super().get_completions(document, complete_event)


def _no_signatures_shown(self: Any, buffer: Any) -> None:
    log.warning("signatures are not shown: %s is not possible here", _SAFE_COMPLETION)


class PythonInputForManhole(PythonInput):
    """ptpython's ``PythonInput`` sharing its styles between sessions, and asking jedi for
    signatures without running host code. (Put after ``PythonRepl`` in a subclass's bases,
    so that ``PythonRepl.__init__`` runs this ``__init__``.)"""


def _method_with_globals(
    name: str, what: str, refused: Callable[..., Any] | None, **names: object
) -> None:
    """ptpython's own method ``name``, finding ``names`` in place of its module's functions;
    where that is not possible, the stock method, or ``refused``."""
    original = vars(PythonInput).get(name)
    if original is None:
        return  # ptpython no longer has it: nothing to speed up, nothing to guard
    setattr(
        PythonInputForManhole, name, with_globals(original, what, **names) or refused or original
    )


_method_with_globals(
    "__init__",
    "styles converted once for every session",
    None,
    get_all_code_styles=_shared_code_styles,
    get_all_ui_styles=_shared_ui_styles,
)
_method_with_globals(
    "_generate_style", "one merged style for every session", None, generate_style=_shared_merge
)
_method_with_globals(
    "_on_input_timeout",
    _SAFE_COMPLETION,
    _no_signatures_shown,
    get_signatures_using_jedi=signatures,
)
