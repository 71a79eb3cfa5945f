"""``logs()``: the host's log records, streamed into this session only, until Ctrl-C.

A handler is added to the chosen logger while the statement runs and removed when it
ends; nothing else changes (not the logger's level, not the host's handlers, not other
sessions). A logger whose level drops the records asked for is reported, not changed.
The manhole's own loggers (``manhole_ssh.*``) are left out: they would echo the session.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ..green import originals
from .live import Feed, refuse_on_the_host_loop
from .registry import register
from .report import Report

__all__ = ["logs"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"

# Streams open now, by the session (its worker thread's name) that opened them.
_streams: dict[str, list[Feed]] = {}
_streams_lock = originals.allocate_lock()


class _ToFeed(logging.Handler):
    def __init__(self, level: int, feed: Feed) -> None:
        super().__init__(level)
        self._feed = feed
        self.setFormatter(logging.Formatter(_FORMAT))

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("manhole_ssh") and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._feed.put((record.levelname, self.format(record)))
        except Exception:
            self.handleError(record)


def _session_of_this_thread() -> str:
    # A worker replaced after an abandoned statement is named "<session's worker> #n".
    return originals.current_thread().name.split(" #", 1)[0]


def logs(
    level: int | str | bool = "INFO", logger: str = "", seconds: float | None = None
) -> Report:
    """Show the host's log records of ``logger`` (``""``: all, through the root) at
    ``level`` and above as they are made, in this session only, until Ctrl-C (or
    ``seconds``). ``logs(False)`` ends the streams this session has open in other threads."""
    refuse_on_the_host_loop("logs")
    if level is False:
        with _streams_lock:
            feeds = _streams.pop(_session_of_this_thread(), [])
        for feed in feeds:
            feed.stop.set()
        return Report(
            {"stopped": len(feeds)}, f"Stopped {len(feeds)} log stream(s) of this session."
        )
    if level is True:
        level = "INFO"
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}: DEBUG, INFO, WARNING, ERROR or a number")
    target = logging.getLogger(logger or None)
    effective = target.getEffectiveLevel()
    name = logger or "root"
    feed = Feed()
    handler = _ToFeed(number, feed)
    session = _session_of_this_thread()
    interrupted = False
    with _streams_lock:
        _streams.setdefault(session, []).append(feed)
    try:
        target.addHandler(handler)
        if effective > number:
            print(
                f"Note: logger {name!r} drops records below {logging.getLevelName(effective)}; "
                "they cannot be shown (its level is the host's: not changed).",
                file=sys.stderr,
                flush=True,
            )
        print(
            f"Streaming {name!r} at {logging.getLevelName(number)} and above until Ctrl-C…",
            file=sys.stderr,
            flush=True,
        )
        interrupted = feed.follow(lambda record: print(record[1], flush=True), seconds)
    except KeyboardInterrupt:  # (before following began)
        interrupted = True
    finally:
        target.removeHandler(handler)
        with _streams_lock:
            mine = _streams.get(session, [])
            if feed in mine:
                mine.remove(feed)
            if not mine:
                _streams.pop(session, None)
    records = feed.seen
    ended = "Ctrl-C" if interrupted else "stopped" if feed.stop.is_set() else "time up"
    dropped = f", {feed.dropped} dropped (too many)" if feed.dropped else ""
    data: dict[str, Any] = {
        "records": [{"level": lvl, "text": text} for lvl, text in records],
        "dropped": feed.dropped,
        "effective_level": logging.getLevelName(effective),
    }
    return Report(data, f"Log stream ended ({ended}): {len(records)} record(s){dropped}.")


register("logs", logs, "stream the host's log records into this session until Ctrl-C")
