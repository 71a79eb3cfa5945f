"""OpenSSH user certificates, checked as sshd checks them.

An authorized_keys line with ``cert-authority`` names a CA: a user certificate it signed
may log in when it is a user certificate, valid now, and names a principal allowed here —
the name of the account the service runs as, or one of the line's ``principals="…"``.
The certificate's key id is the identity in the logs and the audit trail.

asyncssh checks certificates itself, but accepts one that names no principal for any login
name (sshd refuses it), and has no revocation; so the check is made here, in full, and
asyncssh only verifies the signature afterwards (see :func:`check_certificates_here`).
Replacing its check also replaces its touch rule for security keys, so it is made here
(:func:`check_certificate`): without it an ``sk-*`` certificate would log in untouched.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import pwd
from collections.abc import Callable, Sequence
from typing import Any

import asyncssh
from asyncssh.public_key import CERT_TYPE_USER

from .authorized_keys import AuthorizedKey, AuthorizedKeys
from .key_options import KeyOptions, address_as_sshd_sees_it

__all__ = ["CertificateVerdict", "check_certificate", "check_certificates_here", "service_user"]

log = logging.getLogger("manhole_ssh.auth")

CertificateVerdict = tuple[AuthorizedKey | None, str | None]  # the entry, or why not


def service_user() -> str | None:
    """The name of the account this process runs as: the login name sshd would hold a
    certificate to (``None`` if the account has no name)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


def check_certificate(
    cert: Any,
    source: str,
    authorized_keys: AuthorizedKeys,
    revocation: Callable[[Any], str | None],
    account: str | None,
) -> CertificateVerdict:
    """Whether ``cert`` (an ``SSHOpenSSHCertificate``) may log in from address ``source``:
    the entry to log in with, or ``(None, reason)``.

    As sshd, the first ``cert-authority`` line for the CA whose options allow the login
    wins. A line without ``principals=`` accepts a certificate naming ``account``, the
    service's own user name (what sshd holds a certificate to for that account), whatever
    login name the client sent. A security-key certificate must show a touch unless both
    the CA line and the certificate say ``no-touch-required`` (sshd ANDs the two).
    """
    if not cert.principals:
        return None, "certificate names no principal (refused, as sshd does)"
    try:
        cert.validate(CERT_TYPE_USER, None)  # a user certificate, valid now
    except ValueError as error:
        return None, f"certificate refused: {str(error).lower()}"
    authorities = authorized_keys.authorities(cert.signing_key)
    if not authorities:
        return None, f"certificate signed by a CA not in {authorized_keys.path}"
    reason = _source_address_refusal(cert.options.get("source-address"), source)
    if reason is not None:
        return None, reason
    reason = revocation(cert)
    if reason is not None:
        return None, reason
    forced = cert.options.get("force-command")
    first_refusal = None
    for authority in authorities:
        reason = authority.options.refusal(source)
        allowed = authority.options.principals or ((account,) if account else ())
        if reason is None and not set(cert.principals) & set(allowed):
            wanted = ",".join(allowed) or "(this account has no name)"
            reason = f"certificate principals {','.join(cert.principals)} do not include {wanted}"
        command = authority.options.command
        if reason is None and command is not None and forced is not None and command != forced:
            reason = "command= of the CA line and the certificate's force-command differ"
        if reason is not None:
            first_refusal = first_refusal or f"certificate authority line: {reason}"
            continue
        cert.key.set_touch_required(
            authority.options.touch_required or not cert.options.get("no-touch-required", False)
        )
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
                certificate=cert,
            ),
            None,
        )
    return None, first_refusal


def _source_address_refusal(networks: Sequence[Any] | None, source: str) -> str | None:
    if not networks:
        return None
    try:
        address = ipaddress.ip_address(address_as_sshd_sees_it(source))
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
