"""OpenSSH user certificates from a `cert-authority` line, with the real ssh client."""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path

import asyncssh
import pytest
from conftest import (
    Host,
    Keys,
    exec_code,
    read_events,
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
