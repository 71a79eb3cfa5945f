"""``threads()``: every thread's stack, CPU time and (on request) locals, secrets masked.

Reading another thread's frames is safe from any thread (``sys._current_frames()``), so
this answers while the host's main thread or loop is stuck. The report keeps no frame:
only file, line, function and the ``reprlib``-cut text of locals.
"""

from __future__ import annotations

import linecache
import os
import re
import reprlib
import sys
import threading
from collections.abc import Mapping
from types import FrameType
from typing import Any

from ..green import originals
from ..green.hub import format_greenlets
from ..session.namespace import MANHOLE_THREAD_PREFIX
from .registry import register
from .report import Report

__all__ = [
    "describe_frame",
    "describe_stack",
    "format_stack",
    "mask_locals",
    "thread_cpu_seconds",
    "threads",
]

# Locals whose name says they hold a secret: their value is never shown.
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|key|auth|cookie|credential|api_?key", re.IGNORECASE
)
MASK = "<masked>"


class _MaskingRepr(reprlib.Repr):
    """``reprlib``'s short repr, with a dict's values under secret-looking keys masked
    (``headers = {'Authorization': <masked>, …}``)."""

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        try:
            keys = sorted(x)
        except Exception:  # keys of different types, as reprlib does
            keys = list(x)
        pieces = [
            f"{self.repr1(key, level - 1)}: "
            + (
                MASK
                if isinstance(key, str) and SECRET_NAME.search(key)
                else self.repr1(x[key], level - 1)
            )
            for key in keys[: self.maxdict]
        ]
        if len(x) > self.maxdict:
            pieces.append("...")
        return "{" + ", ".join(pieces) + "}"


_short_repr = _MaskingRepr()
_short_repr.maxstring = 60
_short_repr.maxother = 60
_short_repr.maxlevel = 2
_short_repr.maxdict = _short_repr.maxlist = _short_repr.maxtuple = _short_repr.maxset = 5


def mask_locals(variables: Mapping[str, Any]) -> dict[str, str]:
    """``name -> short repr`` of a frame's locals; a secret-looking name's value masked.
    A ``repr`` that fails shows as the error, never raises."""
    shown: dict[str, str] = {}
    for name, value in list(variables.items()):
        if SECRET_NAME.search(name):
            shown[name] = MASK
            continue
        try:
            shown[name] = _short_repr.repr(value)
        except Exception as error:  # a host object whose repr fails
            shown[name] = f"<repr failed: {type(error).__name__}>"
    return shown


def describe_frame(frame: FrameType, with_locals: bool = False) -> dict[str, Any]:
    """One frame as plain data: file, line, function (and its locals, masked)."""
    entry: dict[str, Any] = {
        "file": frame.f_code.co_filename,
        "line": frame.f_lineno,
        "function": frame.f_code.co_name,
    }
    if with_locals and frame.f_locals is not frame.f_globals:  # (a module's: its globals)
        entry["locals"] = mask_locals(frame.f_locals)
    return entry


def frame_chain(top: FrameType | None) -> list[FrameType]:
    """The frames from ``top`` down to the outermost, outermost first.

    Take it at once after ``sys._current_frames()``: the thread goes on running, and a
    frame that has returned meanwhile (a generator's, typically) no longer knows its caller.
    """
    frames: list[FrameType] = []
    frame = top
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return frames


def describe_stack(top: FrameType | None, with_locals: bool = False) -> list[dict[str, Any]]:
    """The frames from ``top`` down to the outermost, outermost first, as plain data."""
    return [describe_frame(frame, with_locals) for frame in frame_chain(top)]


def format_stack(stack: list[dict[str, Any]], indent: str = "  ") -> list[str]:
    lines = []
    for entry in stack:
        lines.append(
            f'{indent}File "{entry["file"]}", line {entry["line"]}, in {entry["function"]}'
        )
        source = linecache.getline(entry["file"], entry["line"]).strip()
        if source:
            lines.append(f"{indent}  {source}")
        for name, value in entry.get("locals", {}).items():
            lines.append(f"{indent}    {name} = {value}")
    return lines


def thread_cpu_seconds(native_id: int | None) -> float | None:
    """CPU time (user + system) a thread has used, from Linux's /proc; None elsewhere or
    once the thread has ended."""
    if native_id is None:
        return None
    try:
        with open(f"/proc/self/task/{native_id}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # After "pid (comm)": state is field 3, utime 14 and stime 15 (1-based): 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _main_thread_ident(frames: Mapping[int, Any]) -> int | None:
    """The main thread's OS identifier. gevent numbers ``threading``'s threads by greenlet,
    and keeps the real one as ``gevent.hub.MAIN_THREAD_IDENT``."""
    ident = threading.main_thread().ident
    gevent_hub = sys.modules.get("gevent.hub")
    if ident not in frames and gevent_hub is not None:
        return getattr(gevent_hub, "MAIN_THREAD_IDENT", ident)
    return ident


def known_threads() -> dict[int, threading.Thread]:
    """Thread ident -> its ``threading`` object (real threads of a green host included)."""
    known: list[threading.Thread] = [*threading.enumerate(), *originals.real_threads()]
    return {thread.ident: thread for thread in known if thread.ident is not None}


def is_manhole_thread(thread: threading.Thread | None) -> bool:
    return thread is not None and thread.name.startswith(MANHOLE_THREAD_PREFIX)


def threads(limit: int | None = 20, locals: bool = False) -> Report:
    """Every thread's name, CPU time and current stack; the manhole's own are marked.

    :param locals: also each frame's local variables, cut short by ``reprlib``; a variable
        whose name looks like a secret (password, secret, token, key, auth, cookie,
        credential) shows as ``<masked>``.
    :param limit: in a gevent or eventlet host, the waiting greenlets are listed after the
        threads, those with the same stack counted together, most common first: at most
        ``limit`` different stacks (``None``: all).
    """
    frames = sys._current_frames()
    chains = {ident: frame_chain(frame) for ident, frame in frames.items()}
    try:
        by_ident = known_threads()
        main_ident = _main_thread_ident(frames)
        if main_ident is not None:
            by_ident.setdefault(main_ident, threading.main_thread())
        current = originals.get_ident()
        rows: list[dict[str, Any]] = []
        for ident in sorted(chains, key=lambda ident: ident != main_ident):
            thread = by_ident.get(ident)
            marks = []
            if is_manhole_thread(thread):
                marks.append("manhole")
            if ident == current:
                marks.append("this session")
            if thread is not None and thread.daemon:
                marks.append("daemon")
            native_id = getattr(thread, "native_id", None) if thread is not None else None
            if ident == main_ident and native_id is None:
                native_id = os.getpid()
            rows.append(
                {
                    "name": thread.name if thread is not None else "<unknown>",
                    "ident": ident,
                    "native_id": native_id,
                    "marks": marks,
                    "cpu_seconds": thread_cpu_seconds(native_id),
                    "stack": [describe_frame(each, locals) for each in chains[ident]],
                }
            )
    finally:
        del frames, chains
    greenlets = format_greenlets(limit)
    lines: list[str] = []
    for row in rows:
        label = f" [{', '.join(row['marks'])}]" if row["marks"] else ""
        cpu = f" cpu {row['cpu_seconds']:.2f} s" if row["cpu_seconds"] is not None else ""
        lines.append(f"Thread {row['name']!r} (ident {row['ident']}){label}{cpu}:")
        lines += format_stack(row["stack"])
        lines.append("")
    if greenlets:
        lines.append(greenlets)
    return Report({"threads": rows, "greenlets": greenlets or None}, "\n".join(lines).rstrip())


register(
    "threads",
    threads,
    "every thread's stack and CPU time (locals=True: its variables, secrets masked)",
)
