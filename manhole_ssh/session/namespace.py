"""What a session's namespace offers besides the host's ``locals``."""

from __future__ import annotations

import builtins
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from ..green import originals
from ..green.hub import format_greenlets, in_hub

__all__ = ["MANHOLE_THREAD_PREFIX", "SessionExit", "make_namespace", "threads"]

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


def threads(limit: int | None = 20) -> None:
    """Print every thread's name and current stack; the manhole's own are marked.

    In a gevent or eventlet host, then the waiting greenlets, those with the same stack
    counted together, most common first: at most ``limit`` different stacks (``None``: all).
    """
    frames = sys._current_frames()
    known: list[threading.Thread] = [*threading.enumerate(), *originals.real_threads()]
    by_ident = {thread.ident: thread for thread in known}
    main_ident = _main_thread_ident(frames)
    by_ident.setdefault(main_ident, threading.main_thread())
    current = originals.get_ident()
    for ident, frame in sorted(frames.items(), key=lambda item: item[0] != main_ident):
        thread = by_ident.get(ident)
        name = thread.name if thread is not None else "<unknown>"
        marks = []
        if name.startswith(MANHOLE_THREAD_PREFIX):
            marks.append("manhole")
        if ident == current:
            marks.append("this session")
        if thread is not None and thread.daemon:
            marks.append("daemon")
        label = f" [{', '.join(marks)}]" if marks else ""
        print(f"Thread {name!r} (ident {ident}){label}:")
        print("".join(traceback.format_stack(frame)).rstrip())
        print()
    greenlets = format_greenlets(limit)
    if greenlets:
        print(greenlets)


def _main_thread_ident(frames: Mapping[int, Any]) -> int | None:
    """The main thread's OS identifier. gevent numbers ``threading``'s threads by greenlet,
    and keeps the real one as ``gevent.hub.MAIN_THREAD_IDENT``."""
    ident = threading.main_thread().ident
    gevent_hub = sys.modules.get("gevent.hub")
    if ident not in frames and gevent_hub is not None:
        return getattr(gevent_hub, "MAIN_THREAD_IDENT", ident)
    return ident


def make_namespace(
    host_locals: Mapping[str, Any], *, pager: Callable[[str], object] | None = None
) -> dict[str, Any]:
    """A fresh namespace for one session: the host's objects themselves (not copies), the
    helpers, ``sys`` and ``asyncio`` (the banner and docs use them: ``sys.exit()``,
    ``await asyncio.sleep(1)``), and session-safe ``exit``/``quit``/``help``.

    :param pager: how ``help()`` shows a text on the session's terminal; ``None`` (no
        terminal): it writes the text out.
    """
    # Imported here, with the first session: install() imports this module (for
    # MANHOLE_THREAD_PREFIX), and must not import asyncio or pydoc before a client comes.
    import asyncio

    from .help import SessionHelp
    from .shell import sh

    namespace: dict[str, Any] = {
        "__name__": "__manhole__",
        "__builtins__": builtins,
        "__doc__": None,
        "asyncio": asyncio,
        "sys": sys,
        "sh": sh,
        "threads": threads,
        "in_hub": in_hub,
    }
    namespace.update(host_locals)
    namespace["exit"] = SessionExit("exit")
    namespace["quit"] = SessionExit("quit")
    namespace["help"] = SessionHelp(pager)
    return namespace
