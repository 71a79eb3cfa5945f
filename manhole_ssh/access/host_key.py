"""The server's host key: checked up front, created on first use, loaded for asyncssh."""

from __future__ import annotations

import binascii
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .file_modes import open_checked, resolve_checked

if TYPE_CHECKING:
    import asyncssh

__all__ = [
    "fingerprint_of",
    "host_public_key",
    "load_host_key",
    "precheck_host_key",
    "public_key_line",
    "write_host_key",
]


def precheck_host_key(path: Path, *, create_if_missing: bool) -> None:
    """Check in the caller's thread that the host key can be used (or made).

    :param create_if_missing: true for the default path, which is made on first use; a
        path the user named must exist, since a typo should not silently mint a new key.
    """
    try:
        os.close(open_checked(path, "host key", private=True))
    except FileNotFoundError:
        if create_if_missing:
            return
        raise ConfigError(
            f"host key {path} does not exist: create it with `manhole-ssh keygen {path}` "
            "or leave host_key unset to use the default one"
        ) from None


def host_public_key(path: Path) -> bytes | None:
    """The public key blob of an OpenSSH private key file, read without cryptography.

    The public key sits unencrypted in the file's header, so this costs no import.
    ``None`` if the file cannot be read or is not in OpenSSH's format.
    """
    try:
        body = "".join(
            line for line in path.read_text("ascii").splitlines() if not line.startswith("-----")
        )
        blob = binascii.a2b_base64(body)
        magic = b"openssh-key-v1\0"
        if not blob.startswith(magic):
            return None
        offset = len(magic)
        for _ in range(3):  # cipher name, KDF name, KDF options
            (length,) = struct.unpack_from(">I", blob, offset)
            offset += 4 + length
        offset += 4  # number of keys
        (length,) = struct.unpack_from(">I", blob, offset)
        return blob[offset + 4 : offset + 4 + length]
    except (OSError, ValueError, struct.error, binascii.Error):
        return None


def fingerprint_of(public_key: bytes | None) -> str | None:
    """``SHA256:…`` of a public key blob, as OpenSSH shows it."""
    if public_key is None:
        return None
    digest = _sha256(public_key).digest()
    return "SHA256:" + binascii.b2a_base64(digest, newline=False).decode("ascii").rstrip("=")


def public_key_line(public_key: bytes) -> str:
    """``ssh-ed25519 AAAA…``: a public key blob as known_hosts and authorized_keys write it."""
    (length,) = struct.unpack_from(">I", public_key)
    key_type = public_key[4 : 4 + length].decode("ascii")
    return f"{key_type} {binascii.b2a_base64(public_key, newline=False).decode('ascii')}"


def _sha256(data: bytes) -> Any:
    """SHA-256 from the interpreter's own module: ``hashlib`` would load OpenSSL's libcrypto
    (3.6 MB of RSS measured) into a host that may never need it."""
    try:
        module = __import__("_sha2")  # Python >= 3.12
    except ImportError:
        module = __import__("_sha256")
    return module.sha256(data)


def write_host_key(path: Path, *, with_public_key: bool = False) -> str:
    """Write a new ed25519 private key to ``path`` with mode 0600 and return its fingerprint.

    The file is created with its final mode (never briefly readable by others, whatever the
    umask) and never overwrites an existing one. A missing folder is made with mode 0700.

    :param with_public_key: also write ``PATH.pub``, as ssh-keygen does.
    """
    import asyncssh

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    real = resolve_checked(path, "host key")
    descriptor = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key.export_private_key("openssh"))
    if with_public_key:
        path.with_name(path.name + ".pub").write_bytes(key.export_public_key("openssh"))
    return str(key.get_fingerprint("sha256"))


def read_checked_bytes_private(path: Path) -> bytes:
    """The host key file's bytes, opened safely and checked private (see :mod:`.filemodes`)."""
    descriptor = open_checked(path, "host key", private=True)
    with os.fdopen(descriptor, "rb") as key_file:
        return key_file.read()


def load_host_key(path: Path, *, create_if_missing: bool) -> tuple[asyncssh.SSHKey, bool]:
    """Load the host key, making it first if allowed; returns the key and whether it is new."""
    import asyncssh

    created = False
    if create_if_missing and not path.exists():
        try:
            write_host_key(path)
            created = True
        except FileExistsError:
            pass  # another process made it between the check and the write
    try:
        data = read_checked_bytes_private(path)
    except FileNotFoundError:
        raise ConfigError(f"host key {path} does not exist") from None
    try:
        return asyncssh.import_private_key(data), created
    except (asyncssh.KeyImportError, ValueError) as error:
        raise ConfigError(f"host key {path} is not a usable private key: {error}") from None
