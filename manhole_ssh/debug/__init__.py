"""The production debugger's helpers, as each session's namespace offers them."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["session_helpers"]


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
