"""Tracebacks as the user should see them: their code and what it called, not the manhole's."""

from __future__ import annotations

import os
import traceback

__all__ = ["format_traceback"]

# The package, not this subpackage: frames of any of the manhole's modules are its own.
_PACKAGE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _users_frames(stack: traceback.StackSummary, filename: str) -> traceback.StackSummary:
    """The frames from the user's first one down; if there is none (their code did not
    compile, or failed before it ran), the frames that are not the manhole's own."""
    frames = list(stack)
    for index, frame in enumerate(frames):
        if frame.filename == filename:
            return traceback.StackSummary.from_list(frames[index:])
    while frames and frames[0].filename.startswith(_PACKAGE_FOLDER):
        frames.pop(0)
    return traceback.StackSummary.from_list(frames)


def format_traceback(error: BaseException, filename: str) -> str:
    """``error`` as ``python -c`` shows it, for code compiled as ``filename``: chained
    exceptions included, and no frame of the manhole above the user's code (a
    ``SyntaxError`` shows no frames at all)."""
    shown = traceback.TracebackException.from_exception(error)
    pending, trimmed = [shown], set()
    while pending:
        current = pending.pop()
        if id(current) in trimmed:
            continue
        trimmed.add(id(current))
        current.stack = _users_frames(current.stack, filename)
        pending.extend(
            chained for chained in (current.__cause__, current.__context__) if chained is not None
        )
        pending.extend(current.exceptions or ())
    return "".join(shown.format())
