"""Where the manhole leans on the internals of the libraries it hosts its REPL with.

The REPL is prompt_toolkit's and ptpython's, made faster and safer for the manhole through
a few of their private names. Everything here applies to the manhole's own objects only
(its application, renderer, layout, containers, completer): a host that uses
prompt_toolkit, ptpython or jedi itself sees them exactly as they were before a session.

Each private name is checked when it is first used (:func:`has_private`,
:func:`with_globals`): if a newer release has dropped or renamed it, that speed-up is left
out (the stock behaviour stays), and a log line says which. Where the name guards the host
(completion that must not run host code), the feature is refused instead.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["has_private", "log", "with_globals"]

_Function = TypeVar("_Function", bound=Callable[..., Any])

log = logging.getLogger("manhole_ssh.compat")
_reported: set[str] = set()


def has_private(owner: object, name: str, what: str) -> bool:
    """Whether ``owner`` (a class, module or object) has the private ``name``; if not, log
    once that ``what`` is left out, and the caller keeps the library's own behaviour."""
    if hasattr(owner, name):
        return True
    where = getattr(owner, "__qualname__", None) or type(owner).__qualname__
    if f"{where}.{name}" not in _reported:
        _reported.add(f"{where}.{name}")
        log.warning("%s has no %s in this version: %s is left out", where, name, what)
    return False


def with_globals(function: _Function, what: str, **names: object) -> _Function | None:
    """A copy of ``function`` (a library's) that finds ``names`` in place of its module's
    globals of those names: the library's own code, calling what the manhole gives it, for
    the manhole's callers only (the module and the original function are untouched).

    ``None``, and a log line, if the code no longer reads one of those globals (functions
    defined inside it included): the caller then keeps, or refuses, the stock behaviour.
    """
    read = set(_names_read(function.__code__))
    for name in names:
        if name not in read or name not in function.__globals__:
            qualified = f"{function.__module__}.{function.__qualname__}"
            log.warning("%s no longer calls %s in this version: %s", qualified, name, what)
            return None
    copy = types.FunctionType(
        function.__code__,
        {**function.__globals__, **names},
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__, copy.__doc__ = function.__qualname__, function.__doc__
    return copy  # type: ignore[return-value]


def _names_read(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names_read(constant)
