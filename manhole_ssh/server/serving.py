"""One manhole serving on its own loop: its host key loaded (made at the first connection
if it is the default one), the state its connections share, its listeners accepting until
it is asked to stop, then every connection ended."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import asyncssh

from ..access.authorized_keys import AuthorizedKeys
from ..access.host_key import load_host_key
from ..access.revocation import RevokedKeys
from ..config import Config
from .ssh_server import ServerState, shut_down, start_server

__all__ = ["serve", "watch_key_files"]

log = logging.getLogger("manhole_ssh")


async def serve(
    listeners: list[socket.socket],
    config: Config,
    *,
    revoked: set[str],
    stop_requested: asyncio.Event,
    stop_timeout: Callable[[], float],
    host_key_created: Callable[[asyncssh.SSHKey], object],
    serving: Callable[[ServerState], object],
) -> None:
    """Serve on ``listeners`` until ``stop_requested`` is set; then give the sessions
    ``stop_timeout()`` seconds to end.

    :param revoked: the fingerprints ``Manhole.revoke()`` refuses (shared, not copied).
    :param host_key_created: called with the host key if it was made now.
    :param serving: called with the connections' shared state, once it is made.
    """
    host_key, created = load_host_key(
        config.host_key_path, create_if_missing=config.host_key_is_default
    )
    if created:
        host_key_created(host_key)
    authorized_keys = AuthorizedKeys(config.authorized_keys)
    revoked_keys = (
        RevokedKeys(config.revoked_keys_path) if config.revoked_keys_path is not None else None
    )
    if not len(authorized_keys):
        log.warning("no usable key in %s: every login is refused", authorized_keys.path)
    settings = ServerState(
        authorized_keys,
        config.locals,
        config.loop,
        config.limits,
        on_session_end=stop_requested.set if config.oneshot else None,
        post_quantum_only=config.post_quantum_only,
        session_recordings=config.session_recordings,
    )
    settings.revoked = revoked
    settings.revoked_keys = revoked_keys
    serving(settings)
    if config.end_sessions_on_key_removal:
        watcher = asyncio.get_running_loop().create_task(watch_key_files(settings))
    acceptors = [await start_server(listener, host_key, settings) for listener in listeners]
    try:
        await stop_requested.wait()
    finally:
        if config.end_sessions_on_key_removal:
            watcher.cancel()
        await shut_down(acceptors, settings, stop_timeout())


async def watch_key_files(settings: ServerState, interval: float = 1.0) -> None:
    """end_sessions_on_key_removal: end the sessions of keys that left authorized_keys or
    entered revoked_keys (checked every ``interval`` seconds; a stat() when nothing changed)."""
    while True:
        await asyncio.sleep(interval)
        authorized = settings.authorized_keys.fingerprints()
        removed = {
            server.fingerprint
            for server in settings.servers
            if server.fingerprint is not None
            and (server.authorized_by not in authorized or server.revoked_by_file())
        }
        if removed:
            settings.end_sessions_of(removed, "key removed from authorized_keys or revoked")
