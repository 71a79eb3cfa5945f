"""OpenSSH user certificates from a `cert-authority` line, with the real ssh client."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import os
import time
from pathlib import Path

import asyncssh
import pytest
from asyncssh.packet import Byte, String, UInt32
from asyncssh.sk_eddsa import _SKEd25519Key
from conftest import (
    Host,
    Keys,
    asyncssh_client,
    exec_code,
    read_events,
    run_ssh,
    start_host,
    stop_host,
    wait_for,
    write_key_pair,
)

USER = getpass.getuser()  # ssh logs in with the local user name


class Authority:
    """A CA key in authorized_keys, and user keys with certificates it signed."""

    def __init__(self, keys: Keys, options: str = "") -> None:
        self.keys = keys
        self.ca = asyncssh.generate_private_key("ssh-ed25519", comment="test-ca")
        line = self.ca.export_public_key("openssh").decode().strip()
        keys.authorized_keys.write_text(
            keys.client_key.with_suffix(".pub").read_text()
            + f"cert-authority{',' + options if options else ''} {line}\n"
        )

    def certified_key(self, name: str, **certificate: object) -> Path:
        """A new user key at ``keys/name`` with ``name-cert.pub`` beside it, where ssh
        finds it; ``certificate`` as asyncssh's generate_user_certificate takes it."""
        path = self.keys.folder / name
        user_key = write_key_pair(path, name)
        options: dict[str, object] = {"key_id": f"{name}-id", "principals": [USER]}
        options.update(certificate)
        cert = self.ca.generate_user_certificate(user_key, **options)  # type: ignore[arg-type]
        path.with_name(f"{name}-cert.pub").write_bytes(cert.export_certificate("openssh"))
        return path


def auth_events(audit_file: Path) -> list[dict[str, object]]:
    return [event for event in read_events(audit_file) if event["event"] == "auth"]


def test_a_certificate_logs_in_with_its_key_id_as_identity(
    keys: Keys, audited_host: tuple[Host, Path]
) -> None:
    host, audit_file = audited_host
    key = Authority(keys).certified_key("alice")
    assert exec_code(host.port, key, "'certified'").stdout == "'certified'\n"
    wait_for(lambda: any(e["result"] == "accepted" for e in auth_events(audit_file)), 10, "login")
    accepted = next(e for e in auth_events(audit_file) if e["result"] == "accepted")
    assert accepted["identity"] == "alice-id"
    assert str(accepted["key_type"]).startswith("ED25519-CERT ID alice-id signed by CA SHA256:")


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        ({"principals": []}, "certificate names no principal"),
        ({"principals": ["somebody-else"]}, f"do not include {USER}"),
        ({"valid_before": time.time() - 60}, "certificate refused: certificate expired"),
        ({"valid_after": time.time() + 3600}, "certificate refused: certificate not yet valid"),
        ({"source_address": ["10.9.8.0/24"]}, "not in the certificate's source-address"),
    ],
)
def test_certificates_refused(
    keys: Keys, audited_host: tuple[Host, Path], certificate: dict[str, object], reason: str
) -> None:
    host, audit_file = audited_host
    key = Authority(keys).certified_key("mallory", **certificate)
    result = exec_code(host.port, key, "'must not run'")
    assert (result.returncode, result.stdout) == (255, "")
    wait_for(lambda: auth_events(audit_file), 10, "the refusal")
    reasons = [str(e.get("reason")) for e in auth_events(audit_file)]
    assert any(reason in text for text in reasons), reasons


def test_principals_option_of_the_ca_line(keys: Keys) -> None:
    """principals="ops" on the CA line: a certificate for "ops" gets in whatever the login
    name; one for the login name only does not."""
    authority = Authority(keys, 'principals="ops,oncall"')
    host = start_host(keys)
    try:
        ops = authority.certified_key("ops", principals=["ops"])
        assert exec_code(host.port, ops, "'ops'").stdout == "'ops'\n"
        plain = authority.certified_key("plain", principals=[USER])
        assert exec_code(host.port, plain, "'plain'").returncode == 255
    finally:
        stop_host(host)


def test_a_ca_key_does_not_log_in_by_itself(keys: Keys, tmp_path: Path) -> None:
    """A cert-authority line authorizes certificates, not the CA key as a user key."""
    authority = Authority(keys)
    ca_path = tmp_path / "ca_key"
    ca_path.write_bytes(authority.ca.export_private_key("openssh"))
    os.chmod(ca_path, 0o600)
    host = start_host(keys)
    try:
        assert exec_code(host.port, ca_path, "'ca'").returncode == 255
    finally:
        stop_host(host)


def test_a_certificate_can_force_a_command_and_refuse_a_terminal(keys: Keys) -> None:
    authority = Authority(keys)
    host = start_host(keys)
    try:
        forced = authority.certified_key("forced", force_command="print('forced')")
        assert exec_code(host.port, forced, "print('chosen')").stdout == "forced\n"
        no_pty = authority.certified_key("nopty", permit_pty=False)
        assert exec_code(host.port, no_pty, "import sys; sys.stdout.isatty()").stdout == ("False\n")
    finally:
        stop_host(host)


def test_a_revoked_ca_refuses_its_certificates(keys: Keys, tmp_path: Path) -> None:
    authority = Authority(keys)
    revoked = tmp_path / "revoked_keys"
    revoked.write_text("")
    revoked.chmod(0o600)
    host = start_host(keys, "--set", f"revoked_keys={revoked}")
    try:
        key = authority.certified_key("alice")
        assert exec_code(host.port, key, "'before'").stdout == "'before'\n"
        revoked.write_bytes(authority.ca.export_public_key("openssh"))
        assert exec_code(host.port, key, "'after'").returncode == 255
    finally:
        stop_host(host)


def test_a_ca_line_without_principals_wants_the_service_user(keys: Keys) -> None:
    """sshd holds a certificate to the account's name: a certificate naming whatever name
    the client logs in as is not enough."""
    authority = Authority(keys)
    host = start_host(keys)
    try:
        other = authority.certified_key("other", principals=["somebody-else"])
        result = run_ssh(host.port, other, "-l", "somebody-else", "127.0.0.1", "'in'")
        assert (result.returncode, result.stdout) == (255, "")
        mine = authority.certified_key("mine", principals=[USER])
        result = run_ssh(host.port, mine, "-l", "somebody-else", "127.0.0.1", "'in'")
        assert result.stdout == "'in'\n"
    finally:
        stop_host(host)


class SoftSecurityKey(_SKEd25519Key):  # type: ignore[misc]
    """An sk-ssh-ed25519 key whose 'authenticator' is in memory: it signs as a FIDO device
    would (over the application hash, flags and counter), with the flags it is told, so a
    signature can claim a touch or not. ssh-keygen needs a real device to make sk keys."""

    def __init__(self, flags: int) -> None:
        self.inner = asyncssh.generate_private_key("ssh-ed25519")
        public_value = self.inner.public_data[-32:]
        super().__init__(public_value, "ssh:", flags, key_handle=b"in-memory")
        self.signature_flags = flags

    def sign_ssh(self, data: bytes, sig_algorithm: bytes) -> bytes:
        counter = 1
        signed = self._app_hash + Byte(self.signature_flags) + UInt32(counter)
        signature = self.inner._key.sign(signed + hashlib.sha256(data).digest())
        return String(signature) + Byte(self.signature_flags) + UInt32(counter)


@pytest.mark.parametrize(
    ("ca_options", "cert_says_no_touch", "touched", "gets_in"),
    [
        ("", False, False, False),  # the bug: an untouched security key got in
        ("", False, True, True),
        ("no-touch-required", True, False, True),
        ("no-touch-required", False, False, False),  # sshd: both must say so
        ("", True, False, False),
    ],
)
def test_a_security_key_certificate_needs_a_touch(
    keys: Keys, ca_options: str, cert_says_no_touch: bool, touched: bool, gets_in: bool
) -> None:
    """Over the protocol, with asyncssh's client and an in-memory authenticator."""
    import manhole_ssh

    authority = Authority(keys, ca_options)
    sk_key = SoftSecurityKey(flags=1 if touched else 0)
    certificate = authority.ca.generate_user_certificate(
        sk_key, "sk-id", principals=[USER], touch_required=not cert_says_no_touch
    )
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )

    async def login() -> str:
        async with asyncssh_client(manhole.port, client_keys=[(sk_key, certificate)]) as conn:
            return str((await conn.run("'in'", timeout=20)).stdout)

    try:
        if gets_in:
            assert asyncio.run(login()) == "'in'\n"
        else:
            with pytest.raises(asyncssh.PermissionDenied):
                asyncio.run(login())
    finally:
        manhole_ssh.uninstall()
