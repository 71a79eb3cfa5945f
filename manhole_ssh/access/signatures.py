"""Seeing a bad signature: asyncssh checks a signed public-key request after asking the
server about the key, and refuses a bad signature without telling the server. A client
that presents an authorized key with a forged or broken signature must still leave a
trace in the audit trail and count as a failed login."""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncssh

__all__ = ["report_bad_signatures"]

log = logging.getLogger("manhole_ssh.server")


def report_bad_signatures(
    conn: asyncssh.SSHServerConnection, on_bad_signature: Callable[[str], None]
) -> bool:
    """Call ``on_bad_signature(username)`` when ``conn`` refuses a signed request; the
    server's own callbacks tell whether the key itself was acceptable. False if this
    asyncssh has no such step to watch (bad signatures then go unrecorded, still refused).
    """
    validate = getattr(conn, "validate_public_key", None)
    if validate is None:
        log.warning("this asyncssh cannot be watched for bad signatures: they go unrecorded")
        return False

    async def validate_and_report(
        username: str, key_data: bytes, msg: bytes, signature: bytes
    ) -> bool:
        valid = bool(await validate(username, key_data, msg, signature))
        if msg and not valid:
            on_bad_signature(username)
        return valid

    conn.validate_public_key = validate_and_report  # type: ignore[method-assign]
    return True
