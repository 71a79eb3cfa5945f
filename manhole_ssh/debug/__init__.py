"""The production debugger: what a session's namespace offers to look inside the host.

One module per job (``tasks``, ``stacks``, ``profiler``, ``heap``, ``watch``, ``logs``,
``breakpoints``, ``threads`` for ``debug(thread)``); each registers its helpers with
:func:`register`, :func:`namespace_helpers` gives a session all of them in one call, and
``manhole_help()`` lists them. The looking helpers return a :class:`Report` (readable
``repr``, ``.json()`` for scripts), run in the session's own thread (so they answer while
the host's main thread or loop is blocked), and cost the host nothing until called.

The helper modules are imported with the first session (:func:`namespace_helpers`), not
with this package: a breakpoint in the host imports ``debug.breakpoints`` alone.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from . import registry
from .registry import Helper, manhole_help, register
from .report import Report

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "Helper",
    "Report",
    "manhole_help",
    "namespace_helpers",
    "register",
    "registered",
    "session_helpers",
]


def namespace_helpers(host_loop: asyncio.AbstractEventLoop | None = None) -> dict[str, Any]:
    """Every registered helper for one session's namespace, those that take it bound to
    ``host_loop`` (the loop given to ``install()``/``set_loop()``)."""
    _load_helpers()
    return registry.namespace_helpers(host_loop)


def registered() -> list[Helper]:
    """Every helper ``manhole_help()`` lists, in the order registered."""
    _load_helpers()
    return registry.registered()


def session_helpers(console: Any) -> dict[str, Any]:
    """The debugger's names for one session, bound to its ``console`` (a
    :class:`~manhole_ssh.debug.pdb_session.DebugConsole`)."""
    from . import breakpoints
    from .threads import debug

    attach = functools.wraps(breakpoints.attach)(functools.partial(breakpoints.attach, console))
    return {
        "breakpoints": breakpoints.breakpoints,
        "attach": attach,
        "detach": breakpoints.detach,
        "debug": functools.wraps(debug)(functools.partial(debug, console)),
    }


@functools.cache
def _load_helpers() -> None:
    """Import the helper modules, each of which registers its helpers; register the others
    a session offers. (The breakpoint helpers are bound per session by
    :func:`session_helpers`: registered here to be listed, not put in the namespace.)"""
    from ..green.hub import in_hub
    from ..session.shell import sh
    from . import breakpoints, heap, logs, profiler, stacks, tasks, watch  # noqa: F401
    from .threads import debug

    register("sh", sh, 'run a shell command here: sh("df -h"); its output and exit status')
    register(
        "in_hub", in_hub, "gevent/eventlet hosts: run a function in the host's hub, wait for it"
    )
    for name, function, summary in (
        ("breakpoints", breakpoints.breakpoints, "the threads waiting at a breakpoint"),
        ("attach", breakpoints.attach, "debug a waiting breakpoint (the oldest: attach())"),
        ("detach", breakpoints.detach, "let a breakpoint's thread go on without a debugger"),
        ("debug", debug, "stop a running thread at its next line and debug it (3.12+)"),
    ):
        register(name, function, summary, in_namespace=False)
