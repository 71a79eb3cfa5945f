"""OpenSSH user certificates, checked as sshd checks them.

An authorized_keys line with ``cert-authority`` names a CA: a user certificate it signed
may log in when it is a user certificate, valid now, and names a principal allowed here —
the login name, or one of the line's ``principals="…"``. The certificate's key id is the
identity in the logs and the audit trail.

asyncssh checks certificates itself, but accepts one that names no principal for any login
name (sshd refuses it), and has no revocation; so the check is made here, in full, and
asyncssh only verifies the signature afterwards (see :func:`check_certificates_here`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Any

import asyncssh
from asyncssh.public_key import CERT_TYPE_USER

from .auth import AuthorizedKey, AuthorizedKeys
from .keyoptions import KeyOptions

__all__ = ["CertificateVerdict", "check_certificate", "check_certificates_here"]

log = logging.getLogger("manhole_ssh.auth")

CertificateVerdict = tuple[AuthorizedKey | None, str | None]  # the entry, or why not


def check_certificate(
    cert: Any,
    username: str,
    source: str,
    authorized_keys: AuthorizedKeys,
    revocation: Callable[[asyncssh.SSHKey], str | None],
) -> CertificateVerdict:
    """Whether ``cert`` (an ``SSHOpenSSHCertificate``) may log in as ``username`` from
    address ``source``: the entry to log in with, or ``(None, reason)``."""
    if not cert.principals:
        return None, "certificate names no principal (refused, as sshd does)"
    try:
        cert.validate(CERT_TYPE_USER, None)  # a user certificate, valid now
    except ValueError as error:
        return None, f"certificate refused: {str(error).lower()}"
    authority = authorized_keys.find_authority(cert.signing_key)
    if authority is None:
        return None, f"certificate signed by a CA not in {authorized_keys.path}"
    reason = authority.options.refusal(source)
    if reason is not None:
        return None, f"certificate authority line: {reason}"
    allowed = authority.options.principals or (username,)
    if not set(cert.principals) & set(allowed):
        wanted = f'principals="{",".join(allowed)}"' if authority.options.principals else username
        return None, (f"certificate principals {','.join(cert.principals)} do not include {wanted}")
    reason = _source_address_refusal(cert.options.get("source-address"), source)
    if reason is not None:
        return None, reason
    for key, what in ((cert.key, "certified key"), (cert.signing_key, "certificate authority")):
        reason = revocation(key)
        if reason is not None:
            return None, f"{what}: {reason}"
    command = authority.options.command
    forced = cert.options.get("force-command")
    if command is not None and forced is not None and command != forced:
        return None, "command= of the CA line and the certificate's force-command differ"
    key_id = str(getattr(cert, "_key_id", "") or "")
    return (
        AuthorizedKey(
            key=cert.key,
            comment=key_id,
            fingerprint=cert.key.get_fingerprint("sha256"),
            line_number=authority.line_number,
            options=KeyOptions(
                pty=authority.options.pty and bool(cert.options.get("permit-pty", False)),
                command=command if command is not None else forced,
            ),
            authority=authority,
        ),
        None,
    )


def _source_address_refusal(networks: Sequence[Any] | None, source: str) -> str | None:
    if not networks:
        return None
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return f"certificate source-address set, and {source} is not an IP address"
    if any(address in network for network in networks):
        return None
    return f"source {source} is not in the certificate's source-address"


def check_certificates_here(
    conn: asyncssh.SSHServerConnection,
    judge: Callable[[str, Any], asyncssh.SSHKey | None],
) -> bool:
    """Make ``conn`` ask ``judge(username, cert)`` about each OpenSSH user certificate
    instead of its own check; ``judge`` returns the certified key (whose signature
    asyncssh then verifies) or ``None`` to refuse. False if this asyncssh has no such
    step to replace: certificates are then refused (see ``validate_ca_key``)."""
    if not hasattr(conn, "_validate_openssh_certificate"):
        log.warning("this asyncssh cannot be given a certificate check: certificates refused")
        return False

    async def validate(username: str, cert: Any) -> asyncssh.SSHKey | None:
        return judge(username, cert)

    conn._validate_openssh_certificate = validate  # type: ignore[method-assign]
    return True
