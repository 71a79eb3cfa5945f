"""The audit trail: one JSON object per line, per event, through the ``manhole_ssh.audit``
logger (and, if asked, a file of its own with mode 0600).

Events: ``connect``, ``auth`` (accepted or refused, with key type, fingerprint, identity and
reason), ``login_failed`` (a connection that ended without logging in, and why),
``penalty``, ``env_refused`` (an ``env`` request, with the variable's name),
``session_start``, ``session_end`` (how it ended, and the exit status sent),
``statement_start`` before any code runs (so that code which never returns, or ends the
process, is on record) and ``statement`` when it ends, however it ends, with how and how
long it took. What the user typed is logged whole.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["AuditFile", "audit", "audit_log", "printable", "report_event"]

audit_log = logging.getLogger("manhole_ssh.audit")


def audit(event: str, **fields: Any) -> None:
    """Record one event (cheap when nobody listens)."""
    if not audit_log.isEnabledFor(logging.INFO):
        return
    record = {"time": round(time.time(), 6), "event": event, "pid": os.getpid(), **fields}
    audit_log.info(json.dumps(record, default=str, ensure_ascii=False))


def report_event(
    logger: logging.Logger, level: int, event: str, message: str, *args: object, **fields: Any
) -> None:
    """Write one event once: its line in the text log (``message % args`` on ``logger``, at
    ``level``) and its record in the audit trail (``event`` with ``fields``), so that the
    two cannot drift apart or one be forgotten."""
    logger.log(level, message, *args)
    audit(event, **fields)


class AuditFile:
    """A file handler for the audit logger, created with mode 0600 and appended to."""

    def __init__(self, path: Path) -> None:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        stream = os.fdopen(descriptor, "a", encoding="utf-8", buffering=1)
        self.handler = logging.StreamHandler(stream)
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self._stream = stream

    def attach(self) -> None:
        audit_log.addHandler(self.handler)
        if audit_log.getEffectiveLevel() > logging.INFO:
            audit_log.setLevel(logging.INFO)

    def detach(self) -> None:
        audit_log.removeHandler(self.handler)
        self.handler.close()
        self._stream.close()


def printable(text: object) -> str:
    """``text`` for a line of the text log: characters that are not printable (newline,
    escape, other controls) are written as ``\\xNN``/``\\uNNNN``, so that a key comment,
    certificate ID or user name cannot start a forged line or drive the reader's
    terminal. (The JSON trail escapes them already.)"""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
