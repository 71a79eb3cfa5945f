"""asyncssh glue: the listener, the per-connection :class:`ManholeServer`, its options.

Only public-key authentication exists here. asyncssh reads a falsy ``begin_auth()`` as
"no authentication needed", so :meth:`ManholeServer.begin_auth` returns ``True``
unconditionally, and every other method is switched off explicitly rather than by default.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncssh

from ..access.authorized_keys import AuthorizedKey, AuthorizedKeys
from ..access.certificates import check_certificates_here
from ..access.penalties import NO_KEY_TRIED
from ..access.revocation import RevokedKeys
from ..access.signatures import report_bad_signatures
from ..audit import audit, printable, report_event
from ..config import Limits
from ..session.channel import ManholeSession, SessionContext
from .acceptor import Acceptor
from .admission import Admission, unix_peer
from .connection_tuning import tune_connection
from .key_judge import KeyJudge, key_type

__all__ = ["ManholeServer", "ServerState", "shut_down", "start_server"]

log = logging.getLogger("manhole_ssh.server")

# Modern algorithms only, set explicitly (asyncssh's defaults include NIST curves, SHA-1
# exchanges and MACs, and zlib). ML-KEM hybrid first; curve25519 for OpenSSH < 9.9, unless
# post_quantum_only is set.
POST_QUANTUM_KEX_ALGORITHMS = ("mlkem768x25519-sha256",)
KEX_ALGORITHMS = (*POST_QUANTUM_KEX_ALGORITHMS, "curve25519-sha256")
ENCRYPTION_ALGORITHMS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
MAC_ALGORITHMS = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "umac-128-etm@openssh.com",
)
KEEPALIVE_INTERVAL = 30.0
KEEPALIVE_COUNT_MAX = 3
CLOSE_GRACE = 1.0  # seconds a client has to close a connection we ended, before we cut it


class ServerState:
    """What every connection of one manhole shares: its settings, and its live state (the
    open connections, the keys revoked since start, admission's counts and penalties, the
    host loop that ``Manhole.set_loop()`` changes). Named a state, not settings: it
    changes while the manhole serves, on the manhole's loop only."""

    def __init__(
        self,
        authorized_keys: AuthorizedKeys,
        host_locals: Mapping[str, Any],
        host_loop: asyncio.AbstractEventLoop | None,
        limits: Limits,
        on_session_end: Callable[[], object] | None = None,
        post_quantum_only: bool = False,
        session_recordings: Path | None = None,
    ) -> None:
        self.post_quantum_only = post_quantum_only
        self.session_recordings = session_recordings  # folder for asciicast recordings
        self.on_session_end = on_session_end  # oneshot: stop once a session has ended
        self.authorized_keys = authorized_keys
        self.host_locals = host_locals
        self.host_loop = host_loop
        self.limits = limits
        self.servers: set[ManholeServer] = set()  # one per open connection
        self.admission = Admission(limits, self.servers)
        self.revoked: set[str] = set()  # fingerprints refused by Manhole.revoke()
        self.revoked_keys: RevokedKeys | None = None  # a revoked-keys file, if any

    def revocation(
        self, key: asyncssh.SSHKey, fingerprint: str, certificate: Any = None
    ) -> str | None:
        """Why ``key`` (or ``certificate``, of that key) is revoked, or ``None``. An unusable
        revoked-keys file revokes every key (as sshd's RevokedKeys does): a list meant to
        keep someone out must not fail open."""
        if fingerprint in self.revoked:
            return "key revoked (Manhole.revoke)"
        if certificate is not None and certificate.signing_key.get_fingerprint() in self.revoked:
            return "certificate authority revoked (Manhole.revoke)"
        if self.revoked_keys is None:
            return None
        return self.revoked_keys.refusal(key, certificate)

    def end_sessions_of(self, fingerprints: set[str], reason: str) -> int:
        """End every connection logged in with one of ``fingerprints``; how many."""
        ended = 0
        for server in list(self.servers):
            if (
                server.connection is not None
                and {
                    server.fingerprint,
                    server.authorized_by,
                }
                & fingerprints
            ):
                log.warning("closing connection from %s: %s", server.peer, reason)
                server.end(f"manhole-ssh: session ended: {reason}.")
                ended += 1
        return ended

    def announce(self, message: str) -> None:
        """Tell every open session ``message`` (on the loop)."""
        for server in list(self.servers):
            for session in list(server.sessions):
                if not session.finished:
                    session.notify(message)


class ManholeServer(asyncssh.SSHServer):
    """One client connection: authenticates it (what :class:`.Admission` lets try), and
    opens its sessions."""

    def __init__(self, settings: ServerState) -> None:
        self._settings = settings
        self.address = "unknown"  # the client's IP address (what from= is matched against)
        self.source = "unknown"  # what penalties and per_source_max_startups count by
        self._peer = "unknown"
        self._admitted = False  # past the checks at connect (penalty, crowd)
        self._turned_away = False  # logged in, then refused for a cap: no strike for that
        self._login_timed_out = False
        self._unused_timer: asyncio.TimerHandle | None = None
        self._judge: KeyJudge | None = None  # made once the client is known
        self._accepted: AuthorizedKey | None = None
        self._username = ""
        self.connection: asyncssh.SSHServerConnection | None = None
        self.sessions: set[ManholeSession] = set()
        self.ending = False  # end() was called: no new session

    @property
    def authenticated(self) -> bool:
        return self._accepted is not None

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the key this connection logged in with."""
        return self._accepted.fingerprint if self._accepted is not None else None

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def authorized_by(self) -> str | None:
        """The fingerprint of the authorized_keys line that let this connection in (the
        CA's, for a certificate)."""
        return self._accepted.authorized_by if self._accepted is not None else None

    def revoked_by_file(self) -> bool:
        accepted = self._accepted
        if accepted is None:
            return False
        revocation = self._settings.revocation
        return revocation(accepted.key, accepted.fingerprint, accepted.certificate) is not None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.connection = conn
        peer = conn.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.address, self._peer = str(peer[0]), f"{peer[0]} port {peer[1]}"
            self.source = self._settings.admission.source_of(peer, conn.get_extra_info("sockname"))
        refusal = None
        unix = unix_peer(conn.get_extra_info("socket"))
        if unix is not None:
            self.source = self.address = "unix"
            self._peer, refusal = unix
        judge = self._judge = KeyJudge(
            self._settings, conn, address=self.address, peer=self._peer, source=self.source
        )
        refusal = refusal or self._settings.admission.refusal_at_connect(self.source)
        audit("connect", source=self.source, peer=self._peer, refused=refusal)
        if refusal is not None:
            log.warning("dropped connection from %s: %s", self._peer, refusal)
            asyncio.get_running_loop().call_soon(conn.abort)
            return
        self._admitted = True
        self._settings.servers.add(self)
        log.info("connection from %s", self._peer)
        tune_connection(conn)
        check_certificates_here(conn, judge.certificate)
        report_bad_signatures(conn, judge.bad_signature)

    def end(self, message: str, grace: float = CLOSE_GRACE) -> None:
        """Tell each session why, end it (exit status, EOF, close: ssh prints what came
        before and exits), open no new one, and cut the connection after ``grace``
        seconds if the client has not closed it by then.

        Closing the connection at once would lose the message: ssh exits on the
        disconnect without writing the channel data it still holds.
        """
        self.ending = True
        for session in list(self.sessions):
            session.end(message)
        connection = self.connection
        if connection is not None:
            asyncio.get_running_loop().call_later(grace, connection.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._unused_timer is not None:
            self._unused_timer.cancel()
        if self._admitted and not self.authenticated and not self._turned_away:
            self._login_failed(exc)
        self._settings.servers.discard(self)
        if exc is not None:
            log.info("connection from %s closed: %s", self._peer, exc)
        else:
            log.debug("connection from %s closed", self._peer)

    def _login_failed(self, exc: Exception | None) -> None:
        """A connection that ends without logging in earns its source a strike, whether
        it tried keys or none (a scan, a flood of half-open logins), as sshd's
        "authfail", "noauth" and "grace-exceeded" penalties."""
        weight = 1.0
        failures = self._judge.failures if self._judge is not None else 0
        if failures:
            offense = f"left after {failures} refused key(s)"
        elif exc is not None and "Login timeout" in str(exc):
            grace = self._settings.limits.login_grace_time
            offense = f"no login within login_grace_time ({grace:g} s)"
        else:
            offense, weight = "left without trying a key", NO_KEY_TRIED
        report_event(
            log,
            logging.INFO,
            "login_failed",
            "connection from %s closed without logging in: %s",
            self._peer,
            offense,
            user=self._username or None,
            source=self.source,
            peer=self._peer,
            reason=offense,
        )
        self._settings.admission.strike(self.source, self.address, offense, weight)

    def begin_auth(self, username: str) -> bool:
        self._username = username
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def gss_kex_auth_supported(self) -> bool:
        return False

    def gss_mic_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Judged by :meth:`KeyJudge.public_key`."""
        return self._judge is not None and self._judge.public_key(username, key)

    def validate_ca_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Only reached if :func:`check_certificates_here` could not take over asyncssh's
        certificate check (whose principal check is too lax): refuse."""
        return False

    def auth_completed(self) -> None:
        candidate = self._judge.candidate if self._judge is not None else None
        if candidate is None:
            return
        crowded = self._settings.admission.refusal_at_login(candidate.fingerprint)
        if crowded is not None:
            self._turn_away(candidate, crowded)
            return
        accepted = self._accepted = candidate
        accepted_type = key_type(accepted.key)
        if accepted.authority is not None:  # as sshd: "ED25519-CERT ID … signed by CA …"
            accepted_type += f"-CERT ID {accepted.identity} signed by CA"
            accepted_type += f" {accepted.authority.fingerprint}"
        report_event(
            log,
            logging.INFO,
            "auth",
            "Accepted publickey for %s from %s: %s %s (%s)",
            printable(self._username),
            self._peer,
            printable(accepted_type),
            accepted.fingerprint,
            printable(accepted.identity),
            result="accepted",
            user=self._username,
            source=self.source,
            peer=self._peer,
            key_type=accepted_type,
            fingerprint=accepted.fingerprint,
            identity=accepted.identity,
        )
        self._arm_unused_timer()

    def _turn_away(self, candidate: AuthorizedKey, reason: str) -> None:
        """The key was good, but the server is full: say so and disconnect, with no strike
        (the crowd is not this source's doing)."""
        self._turned_away = True
        report_event(
            log,
            logging.WARNING,
            "auth",
            "refused login of %s from %s: %s",
            candidate.fingerprint,
            self._peer,
            reason,
            result="refused",
            user=self._username,
            source=self.source,
            peer=self._peer,
            fingerprint=candidate.fingerprint,
            identity=candidate.identity,
            reason=reason,
        )
        if self.connection is not None:
            asyncio.get_running_loop().call_soon(
                self.connection.disconnect, asyncssh.DISC_TOO_MANY_CONNECTIONS, reason
            )

    def _arm_unused_timer(self) -> None:
        """sshd's UnusedConnectionTimeout: a logged-in connection with no session open for
        this long is closed (it holds the host's resources and serves nobody)."""
        timeout = self._settings.limits.unused_connection_timeout
        if timeout is None or self.ending or self.connection is None:
            return
        if self._unused_timer is not None:
            self._unused_timer.cancel()
        self._unused_timer = asyncio.get_running_loop().call_later(timeout, self._close_unused)

    def _close_unused(self) -> None:
        self._unused_timer = None
        if self.sessions or self.connection is None:
            return
        timeout = self._settings.limits.unused_connection_timeout
        reason = f"no session open for {timeout:g} s (unused_connection_timeout)"
        report_event(
            log,
            logging.INFO,
            "connection_closed",
            "closing connection from %s: %s",
            self._peer,
            reason,
            source=self.source,
            peer=self._peer,
            reason=reason,
        )
        self.connection.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    def _session_ended(self) -> None:
        if not self.sessions:
            self._arm_unused_timer()
        if self._settings.on_session_end is not None:
            self._settings.on_session_end()

    def session_requested(self) -> ManholeSession | bool:
        if self._accepted is None:  # cannot happen after auth; refuse rather than assume
            return False
        if self.ending:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "this connection is being closed"
            )
        max_sessions = self._settings.limits.max_sessions
        # Only sessions still open count: one that has ended waits for the client to
        # answer its close, and a batch right after another must not be refused for
        # those. A client that never answers cannot pile them up past twice the cap.
        open_sessions = sum(1 for session in self.sessions if not session.finished)
        if open_sessions >= max_sessions or len(self.sessions) >= 2 * max_sessions:
            log.warning(
                "refused a session to %s: %d open on its connection (max_sessions)",
                self._peer,
                max_sessions,
            )
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"{max_sessions} sessions are open on this connection (max_sessions)",
            )
        if self._unused_timer is not None:
            self._unused_timer.cancel()
            self._unused_timer = None
        context = SessionContext(
            identity=printable(self._accepted.identity),
            fingerprint=self._accepted.fingerprint,
            peer=self._peer,
            host_locals=self._settings.host_locals,
            host_loop=self._settings.host_loop,
            live_sessions=self.sessions,
            pty_allowed=self._accepted.options.pty,
            forced_command=self._accepted.options.command,
            on_end=self._session_ended,
            idle_timeout=self._settings.limits.idle_timeout,
            session_timeout=self._settings.limits.session_timeout,
            recordings=self._settings.session_recordings,
        )
        session = ManholeSession(context)
        # Counted from the open, not from session_started(): opens sent in a burst all
        # come before any session starts, and would each pass the check above.
        self.sessions.add(session)
        return session


async def start_server(
    sock: socket.socket, host_key: asyncssh.SSHKey, settings: ServerState
) -> Acceptor:
    """Start serving SSH on an already bound and listening socket.

    Connections are accepted by our own :class:`.Acceptor` (which pauses when the process
    runs out of descriptors) and each is handed to ``asyncssh.run_server`` with options
    validated once, here.
    """
    options = await asyncssh.SSHServerConnectionOptions.construct(
        server_factory=lambda: ManholeServer(settings),
        server_host_keys=[host_key],
        server_version="manhole_ssh",
        kex_algs=list(
            POST_QUANTUM_KEX_ALGORITHMS if settings.post_quantum_only else KEX_ALGORITHMS
        ),
        encryption_algs=list(ENCRYPTION_ALGORITHMS),
        mac_algs=list(MAC_ALGORITHMS),
        compression_algs=None,
        allow_pty=True,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        encoding=None,
        login_timeout=settings.limits.login_grace_time,
        keepalive_interval=KEEPALIVE_INTERVAL,
        keepalive_count_max=KEEPALIVE_COUNT_MAX,
    )

    async def serve(connection: socket.socket) -> None:
        try:
            await asyncssh.run_server(connection, options=options)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # refused, cut or gone before logging in: logged by then
            log.debug("connection ended before logging in: %r", error)

    return Acceptor(sock, serve)


async def shut_down(acceptors: list[Acceptor], settings: ServerState, timeout: float) -> None:
    """Stop listening, tell every session, close every connection, and wait (at most
    ``timeout``) for the sessions' worker threads to end. A statement blocked in C keeps
    its thread until it returns; nothing else is left behind."""
    for acceptor in acceptors:
        acceptor.close()
    servers = list(settings.servers)
    sessions = [session for server in servers for session in server.sessions]
    loop = asyncio.get_running_loop()
    grace = min(CLOSE_GRACE, timeout)
    for server in servers:
        server.end("manhole-ssh is stopping: this session ends (the process keeps running).", grace)
    deadline = loop.time() + timeout
    while settings.servers and loop.time() < deadline:
        await asyncio.sleep(0.01)
    for server in list(settings.servers):  # not gone yet: the loop is about to stop
        if server.connection is not None:
            server.connection.close()
    for session in sessions:
        if session.executor is not None:
            session.executor.close()
            await asyncio.to_thread(session.executor.join, max(0.0, deadline - loop.time()))
