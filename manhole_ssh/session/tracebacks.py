"""Tracebacks as the user should see them: their code and what it called, not the manhole's."""

from __future__ import annotations

import os
import sys
import traceback

__all__ = ["format_traceback"]

# The package, not this subpackage: frames of any of the manhole's modules are its own.
_PACKAGE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


# From 3.13, ``python -c`` shows the source lines of its code in a traceback.
_SHOWS_SOURCE_LINES = sys.version_info >= (3, 13)


def _with_source_lines(
    frames: list[traceback.FrameSummary], filename: str, source: str | None
) -> list[traceback.FrameSummary]:
    """The user's frames with their lines of ``source``, which no file holds (the
    manhole adds nothing to ``linecache``: it is the process's)."""
    if source is None or not _SHOWS_SOURCE_LINES:
        return frames
    lines = source.splitlines()
    return [
        traceback.FrameSummary(
            frame.filename,
            frame.lineno,
            frame.name,
            lookup_line=False,
            line=lines[frame.lineno - 1],
            end_lineno=frame.end_lineno,
            colno=frame.colno,
            end_colno=frame.end_colno,
        )
        if frame.filename == filename and frame.lineno and 0 < frame.lineno <= len(lines)
        else frame
        for frame in frames
    ]


def _users_frames(
    stack: traceback.StackSummary, filename: str, source: str | None
) -> traceback.StackSummary:
    """The frames from the user's first one down; if there is none (their code did not
    compile, or failed before it ran), the frames that are not the manhole's own."""
    frames = list(stack)
    for index, frame in enumerate(frames):
        if frame.filename == filename:
            users = _with_source_lines(frames[index:], filename, source)
            return traceback.StackSummary.from_list(users)
    while frames and frames[0].filename.startswith(_PACKAGE_FOLDER):
        frames.pop(0)
    return traceback.StackSummary.from_list(frames)


def format_traceback(error: BaseException, filename: str, source: str | None = None) -> str:
    """``error`` as ``python -c`` shows it, for code compiled as ``filename`` from
    ``source``: chained exceptions included, and no frame of the manhole above the user's
    code (a ``SyntaxError`` shows no frames at all)."""
    shown = traceback.TracebackException.from_exception(error)
    pending, trimmed = [shown], set()
    while pending:
        current = pending.pop()
        if id(current) in trimmed:
            continue
        trimmed.add(id(current))
        current.stack = _users_frames(current.stack, filename, source)
        pending.extend(
            chained for chained in (current.__cause__, current.__context__) if chained is not None
        )
        pending.extend(current.exceptions or ())
    return "".join(shown.format())
