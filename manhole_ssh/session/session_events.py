"""A session's own records in the log and the audit trail: its start, its end, and the
``env`` requests refused on its channel."""

from __future__ import annotations

import logging

from ..audit import report_event

__all__ = ["SessionEvents"]

log = logging.getLogger("manhole_ssh.session")

# How much of a refused request's text goes into the log and the audit trail.
_LOGGED_TEXT = 64


class SessionEvents:
    """Reports what happens to one session, with who it is and where it came from."""

    def __init__(self, session_id: str, identity: str, peer: str, fingerprint: str | None) -> None:
        self._session_id = session_id
        self._identity = identity
        self._peer = peer
        self._fingerprint = fingerprint

    def env_refused(self, name: bytes) -> None:
        shown = name[:_LOGGED_TEXT].decode("utf-8", "replace")
        report_event(
            log,
            logging.INFO,
            "env_refused",
            "session %s: env request for %r refused",
            self._session_id,
            shown,
            session=self._session_id,
            identity=self._identity,
            peer=self._peer,
            name=shown,
        )

    def started(self, mode: str, recording: str | None) -> None:
        report_event(
            log,
            logging.INFO,
            "session_start",
            "session %s started: %s from %s, %s",
            self._session_id,
            self._identity,
            self._peer,
            mode,
            session=self._session_id,
            identity=self._identity,
            peer=self._peer,
            kind=mode,
            recording=recording,
        )

    def ended(self, mode: str, duration: float, status: int, ended: str) -> None:
        """``ended``: why; the status is not recorded when the client left (none was sent)."""
        report_event(
            log,
            logging.INFO,
            "session_end",
            "session %s ended: %s, %.1f s, %s",
            self._session_id,
            self._identity,
            duration,
            ended,
            session=self._session_id,
            identity=self._identity,
            fingerprint=self._fingerprint,
            kind=mode,
            duration=round(duration, 3),
            status=None if ended.startswith("client left") else status,
            ended=ended,
        )
