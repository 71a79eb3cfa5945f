"""The registry of debugging helpers: name, function, one-line summary.

Each helper module registers its functions at import; :func:`namespace_helpers` gives a
session its names in one call, and ``manhole_help()`` lists them. Other modules (the
breakpoints) register through :func:`register` the same way.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .report import Report

if TYPE_CHECKING:
    import asyncio

__all__ = ["Helper", "manhole_help", "namespace_helpers", "register", "registered"]


@dataclass(frozen=True)
class Helper:
    name: str
    function: Callable[..., Any]
    summary: str
    in_namespace: bool = True  # False: the session puts it there itself (bound to it)


_helpers: dict[str, Helper] = {}


def register(
    name: str, function: Callable[..., Any], summary: str, *, in_namespace: bool = True
) -> None:
    """Offer ``function`` as ``name`` in every session's namespace, listed by
    ``manhole_help()`` with ``summary`` (one line). A function with a ``host_loop``
    keyword parameter gets the loop given to ``install()``/``set_loop()`` (or None).

    :param in_namespace: False for a helper the session binds and adds itself (listed
        only).

    :raises ValueError: a name already taken by another function, or a summary that is
        not one line.
    """
    if not name.isidentifier():
        raise ValueError(f"helper name {name!r} is not a Python identifier")
    if "\n" in summary or not summary.strip():
        raise ValueError(f"helper {name!r}: the summary must be one line")
    known = _helpers.get(name)
    if known is not None and known.function is not function:
        raise ValueError(f"helper {name!r} is already registered ({known.function!r})")
    _helpers[name] = Helper(name, function, summary.strip(), in_namespace)


def registered() -> list[Helper]:
    """Every helper, in the order registered."""
    return list(_helpers.values())


def namespace_helpers(host_loop: asyncio.AbstractEventLoop | None = None) -> dict[str, Any]:
    """The names a session gets: every helper, those that want it bound to ``host_loop``."""
    names: dict[str, Any] = {}
    for helper in _helpers.values():
        if not helper.in_namespace:
            continue
        function = helper.function
        if "host_loop" in inspect.signature(function).parameters:
            function = _bind_loop(function, host_loop)
        names[helper.name] = function
    return names


def _bind_loop(
    function: Callable[..., Any], host_loop: asyncio.AbstractEventLoop | None
) -> Callable[..., Any]:
    @functools.wraps(function)
    def bound(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("host_loop", host_loop)
        return function(*args, **kwargs)

    # help() and completion show the parameters a user passes (host_loop is bound).
    signature = inspect.signature(function)
    bound.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for name, p in signature.parameters.items() if name != "host_loop"]
    )
    return bound


def manhole_help() -> Report:
    """Every helper a session offers, with what it does."""
    helpers = registered()
    width = max((len(helper.name) for helper in helpers), default=0) + 2
    lines = ["Helpers in this session (help(name) for details; .json() on a result for scripts):"]
    lines += [f"  {helper.name + '()':<{width + 2}}{helper.summary}" for helper in helpers]
    lines.append("  help(obj)".ljust(width + 4) + "Python's help, paged in this session")
    lines.append(
        "  exit()".ljust(width + 4) + "leave the manhole (Ctrl-D too); the process keeps running"
    )
    data = [{"name": helper.name, "summary": helper.summary} for helper in helpers]
    return Report(data, "\n".join(lines))


register("manhole_help", manhole_help, "this list")
