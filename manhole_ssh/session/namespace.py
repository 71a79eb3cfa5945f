"""What a session's namespace offers besides the host's ``locals``."""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Mapping
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
    host_locals: Mapping[str, Any],
    host_loop: asyncio.AbstractEventLoop | None = None,
    *,
    pager: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """A fresh namespace for one session: the host's objects themselves (not copies), the
    helpers (the debugging ones bound to ``host_loop``, the loop given to ``install()``),
    ``sys`` and ``asyncio`` (the banner and docs use them: ``sys.exit()``,
    ``await asyncio.sleep(1)``), and session-safe ``exit``/``quit``/``help``.

    :param pager: how ``help()`` shows a text on the session's terminal; ``None`` (no
        terminal): it writes the text out.
    """
    # Imported here, with the first session: install() imports this module (for
    # MANHOLE_THREAD_PREFIX), and must not import asyncio or pydoc before a client comes.
    import asyncio

    from ..debug import namespace_helpers
    from .help import SessionHelp

    namespace: dict[str, Any] = {
        "__name__": "__manhole__",
        "__builtins__": builtins,
        "__doc__": None,
        "asyncio": asyncio,
        "sys": sys,
        **namespace_helpers(host_loop),
    }
    namespace.update(host_locals)
    namespace["exit"] = SessionExit("exit")
    namespace["quit"] = SessionExit("quit")
    namespace["help"] = SessionHelp(pager)
    return namespace
