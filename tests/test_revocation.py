"""revoked_keys: a list of keys or an OpenSSH KRL (as `ssh-keygen -k` writes it), failing
closed: whatever cannot be read revokes every key."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from conftest import Keys, exec_code, start_host, stop_host

from manhole_ssh.access.krl import KRL_MAGIC, KrlError, parse_krl
from manhole_ssh.access.revocation import RevokedKeys

if shutil.which("ssh-keygen") is None:
    pytest.skip("ssh-keygen (OpenSSH) is needed to write KRLs", allow_module_level=True)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private folder (StrictModes), without the cost of the `keys` fixture."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    return private


def public_line(key: asyncssh.SSHKey) -> str:
    return str(key.export_public_key("openssh").decode().strip())


class Authority:
    """A CA and the certificates it signs (in memory: the KRL checks need no login)."""

    def __init__(self, folder: Path) -> None:
        self.ca = asyncssh.generate_private_key("ssh-ed25519")
        self.public_path = folder / "ca.pub"
        self.public_path.write_text(public_line(self.ca) + "\n")

    def certificate(self, serial: int, key_id: str = "someone") -> Any:
        user_key = asyncssh.generate_private_key("ssh-ed25519")
        return self.ca.generate_user_certificate(
            user_key, key_id, serial=serial, principals=["someone"]
        )


def write_krl(folder: Path, specification: str, *options: str) -> Path:
    """A KRL made by ssh-keygen from a key revocation specification (see ssh-keygen(1))."""
    spec = folder / "krl.spec"
    spec.write_text(specification)
    krl = folder / "revoked.krl"
    subprocess.run(
        ["ssh-keygen", "-q", "-k", "-f", str(krl), *options, str(spec)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    krl.chmod(0o600)
    return krl


def test_a_krl_from_ssh_keygen(folder: Path) -> None:
    """Serial ranges, serial bitmaps, key IDs, explicit keys, SHA-1 and SHA-256 hashes."""
    authority = Authority(folder)
    plain = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(4)]
    sparse = [100, 102, 104, 106, 108, 110, 112, 114]  # ssh-keygen writes these as a bitmap
    specification = "\n".join(
        [
            "serial: 5-9",
            *(f"serial: {serial}" for serial in sparse),
            "id: stolen-laptop",
            f"key: {public_line(plain[0])}",
            f"sha1: {public_line(plain[1])}",
            f"sha256: {public_line(plain[2])}",
        ]
    )
    path = write_krl(folder, specification + "\n", "-s", str(authority.public_path))
    krl = parse_krl(path.read_bytes())
    assert krl.certificates and any(
        section.serial_bitmaps for section in krl.certificates[authority.ca.public_data]
    ), "ssh-keygen wrote no bitmap: the test no longer covers bitmaps"
    revoked = RevokedKeys(path)

    def refusal(cert: Any) -> str | None:
        return revoked.refusal(cert.key, cert)

    for serial in (5, 7, 9, *sparse):
        assert "serial" in str(refusal(authority.certificate(serial))), serial
    for serial in (4, 10, 101, 113, 115, 0):
        assert refusal(authority.certificate(serial)) is None, serial
    assert "key ID" in str(refusal(authority.certificate(50, "stolen-laptop")))
    assert refusal(Authority(folder).certificate(7)) is None  # another CA's serial 7
    for key, why in zip(plain[:3], ("key is revoked", "SHA-1", "SHA-256"), strict=True):
        assert why in str(revoked.refusal(key)), why
        certificate = authority.ca.generate_user_certificate(key, "x", principals=["someone"])
        assert why in str(refusal(certificate)), why  # a revoked key's certificates too
    assert revoked.refusal(plain[3]) is None


def test_a_krl_revokes_a_ca(folder: Path) -> None:
    authority = Authority(folder)
    revoked = RevokedKeys(write_krl(folder, f"key: {public_line(authority.ca)}\n"))
    certificate = authority.certificate(3)
    assert "certificate authority" in str(revoked.refusal(certificate.key, certificate))


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_a_krl_revokes_key_ids_for_any_ca(folder: Path) -> None:
    """ssh-keygen -k always names a CA; PROTOCOL.krl allows none (an empty CA key): any CA's
    certificate with that key ID is revoked. The KRL is written here, as the spec lays out."""
    header = KRL_MAGIC + struct.pack(">IQQQ", 1, 1, 0, 0) + _string(b"") + _string(b"")
    key_ids = _string(b"gone") + _string(b"lost")
    section = _string(b"") + _string(b"") + bytes([0x23]) + _string(key_ids)
    path = folder / "revoked.krl"
    path.write_bytes(header + bytes([1]) + _string(section))
    path.chmod(0o600)
    revoked = RevokedKeys(path)
    for key_id in ("gone", "lost"):
        certificate = Authority(folder).certificate(3, key_id)
        assert "revoked for any CA" in str(revoked.refusal(certificate.key, certificate))
    certificate = Authority(folder).certificate(3, "kept")
    assert revoked.refusal(certificate.key, certificate) is None


def test_a_krl_that_cannot_be_read_revokes_every_key(folder: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = write_krl(folder, f"key: {public_line(key)}\n")
    whole = path.read_bytes()
    other = asyncssh.generate_private_key("ssh-ed25519")
    for broken in (whole[:-3], whole + b"\x07\x00\x00\x00\x00", whole[:8] + b"\0\0\0\2"):
        with pytest.raises(KrlError):
            parse_krl(broken)
        path.write_bytes(broken)
        assert "cannot be used" in str(RevokedKeys(path).refusal(other))
    path.write_bytes(whole)
    assert RevokedKeys(path).refusal(other) is None


@pytest.mark.parametrize(
    "line",
    [
        'from="10.0.0.1" {key}',
        "no-touch-required {key}",
        'environment="A=1" {key}',
        "unknown-option {key}",
        "ssh-ed25519 not-base64!",
        "ssh-rsa {blob}",  # says rsa, holds ed25519
    ],
)
def test_a_line_that_cannot_be_read_revokes_every_key(folder: Path, line: str) -> None:
    listed = asyncssh.generate_private_key("ssh-ed25519")
    bystander = asyncssh.generate_private_key("ssh-ed25519")
    path = folder / "revoked_keys"
    blob = public_line(listed).split()[1]
    path.write_text(line.format(key=public_line(listed), blob=blob) + "\n")
    path.chmod(0o600)
    assert "cannot be used" in str(RevokedKeys(path).refusal(bystander))


def test_a_certificate_line_revokes_the_certificates_key(folder: Path) -> None:
    authority = Authority(folder)
    certificate = authority.certificate(1)
    path = folder / "revoked_keys"
    path.write_bytes(certificate.export_certificate("openssh"))
    path.chmod(0o600)
    revoked = RevokedKeys(path)
    assert "listed" in str(revoked.refusal(certificate.key))
    assert "listed" in str(revoked.refusal(certificate.key, certificate))
    assert revoked.refusal(asyncssh.generate_private_key("ssh-ed25519")) is None


def test_revoked_keys_with_the_real_ssh(keys: Keys) -> None:
    """A KRL, then an unreadable line, keep the real client out; fixing the file lets it in."""
    client = asyncssh.read_public_key(keys.client_key.with_suffix(".pub"))
    krl = write_krl(keys.folder, f"sha256: {public_line(client)}\n")
    revoked = keys.folder / "revoked_keys"
    revoked.write_bytes(krl.read_bytes())
    revoked.chmod(0o600)
    host = start_host(keys, "--set", f"revoked_keys={revoked}")
    try:
        assert exec_code(host.port, keys.client_key, "1").returncode == 255
        other = keys.other_key.with_suffix(".pub").read_text().strip()
        revoked.write_text(f'from="10.0.0.1" {other}\n')  # a typo'd line: nobody gets in
        assert exec_code(host.port, keys.client_key, "1").returncode == 255
        revoked.write_text(f"{other}\n")
        assert exec_code(host.port, keys.client_key, "'in'").stdout == "'in'\n"
    finally:
        stop_host(host)
