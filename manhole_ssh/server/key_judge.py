"""The keys and certificates one connection offers, judged: revoked, authorized (from
where), refused with a reason on record, and the connection cut past max_auth_tries."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import asyncssh

from ..access.authorized_keys import AuthorizedKey
from ..access.certificates import check_certificate, service_user
from ..audit import printable, report_event

if TYPE_CHECKING:
    from .ssh_server import ServerState

__all__ = ["KeyJudge", "key_type"]

log = logging.getLogger("manhole_ssh.server")


def key_type(key: asyncssh.SSHKey) -> str:
    """The key's type as sshd logs it (``ED25519``)."""
    algorithm = key.algorithm.decode("ascii")
    return algorithm.removeprefix("ssh-").split("@")[0].upper()


class KeyJudge:
    """Judges what one connection offers, on the loop. ``candidate``: the authorized key
    of the last offer accepted, whose signature asyncssh checks next; ``failures``: how
    many were refused.

    :param address: the client's IP address (what ``from=`` is matched against).
    :param peer: the client, as logged; :param source: what penalties count by.
    """

    def __init__(
        self,
        settings: ServerState,
        connection: asyncssh.SSHServerConnection,
        *,
        address: str,
        peer: str,
        source: str,
    ) -> None:
        self._settings = settings
        self._connection = connection
        self._address = address
        self._peer = peer
        self._source = source
        self.candidate: AuthorizedKey | None = None
        self.failures = 0

    def public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Called for the client's offer and again for its signed request; asyncssh checks
        the signature after this returns true."""
        if self.failures >= self._settings.limits.max_auth_tries:
            return False  # the connection is being cut
        entry: AuthorizedKey | None = None
        try:
            reason = self._settings.revocation(key, key.get_fingerprint("sha256"))
            if reason is None:
                entry, reason = self._settings.authorized_keys.match(key, self._address)
        except Exception:
            log.exception("refusing key: reading authorized_keys failed")
            reason, entry = "reading the key files failed", None
        if entry is None:
            self._refused(username, key, reason or "refused")
        self.candidate = entry
        return entry is not None

    def certificate(self, username: str, cert: Any) -> asyncssh.SSHKey | None:
        """An OpenSSH user certificate, checked in full (see :mod:`.certificates`): the
        certified key, whose signature asyncssh then verifies, or ``None``."""
        if self.failures >= self._settings.limits.max_auth_tries:
            return None
        settings = self._settings
        try:
            entry, reason = check_certificate(
                cert,
                self._address,
                settings.authorized_keys,
                lambda cert: settings.revocation(cert.key, cert.key.get_fingerprint(), cert),
                service_user(),
            )
        except Exception:
            log.exception("refusing a certificate: checking it failed")
            entry, reason = None, "checking the certificate failed"
        if entry is None:
            self._refused(username, cert.key, reason or "certificate refused", certificate=True)
        self.candidate = entry
        return entry.key if entry is not None else None

    def bad_signature(self, username: str) -> None:
        candidate = self.candidate
        if candidate is not None:  # the key was acceptable: its signature was not
            self.candidate = None
            self._refused(username, candidate.key, "bad signature")

    def _refused(
        self, username: str, key: asyncssh.SSHKey, reason: str, *, certificate: bool = False
    ) -> None:
        self.failures += 1
        fingerprint = key.get_fingerprint("sha256")
        refused_type = key_type(key) + ("-CERT" if certificate else "")
        report_event(
            log,
            logging.INFO,
            "auth",
            "refused publickey for %s from %s: %s %s: %s",
            printable(username),
            self._peer,
            refused_type,
            fingerprint,
            printable(reason),
            result="refused",
            user=username,
            source=self._source,
            peer=self._peer,
            key_type=refused_type,
            fingerprint=fingerprint,
            reason=reason,
        )
        max_auth_tries = self._settings.limits.max_auth_tries
        if self.failures >= max_auth_tries:
            log.warning(
                "disconnecting %s: %d refused keys (max_auth_tries)", self._peer, self.failures
            )
            asyncio.get_running_loop().call_soon(
                self._connection.disconnect,
                asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                f"Too many authentication failures ({max_auth_tries})",
            )
