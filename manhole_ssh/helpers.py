"""What a session's namespace offers besides the host's ``locals``."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import asyncio

__all__ = ["MANHOLE_THREAD_PREFIX", "SessionExit", "make_namespace"]

# Every thread the manhole starts has a name beginning with this.
MANHOLE_THREAD_PREFIX = "manhole-ssh"


class SessionExit:
    """``exit``/``quit`` for a session: raise SystemExit, which ends the session only.

    Python's own ``exit()`` closes ``sys.stdin`` first, which in a manhole would be the
    host's standard input.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"Use {self._name}() or Ctrl-D to leave the manhole (the process keeps running)"

    def __call__(self, code: object = None) -> NoReturn:
        raise SystemExit(code)


def make_namespace(
    host_locals: Mapping[str, Any], host_loop: asyncio.AbstractEventLoop | None = None
) -> dict[str, Any]:
    """A fresh namespace for one session: the host's objects themselves (not copies), the
    helpers (the debugging ones bound to ``host_loop``, the loop given to ``install()``),
    and a session-safe ``exit``/``quit``."""
    from .debug import namespace_helpers  # (debug's modules use this module's prefix)

    namespace: dict[str, Any] = {
        "__name__": "__manhole__",
        "__builtins__": builtins,
        "__doc__": None,
        **namespace_helpers(host_loop),
    }
    namespace.update(host_locals)
    namespace["exit"] = SessionExit("exit")
    namespace["quit"] = SessionExit("quit")
    return namespace
