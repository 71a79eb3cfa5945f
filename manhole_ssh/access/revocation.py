"""The ``revoked_keys`` file, read as sshd reads its RevokedKeys, failing closed.

The file is either an OpenSSH KRL (``ssh-keygen -k``, read by :mod:`.krl`) or a list of
public keys, one a line, as ssh-keygen writes them (``TYPE BASE64 [comment]``; ``#`` lines
and blank lines are skipped). A line holding a certificate revokes the certificate's key,
and so every certificate of that key; a listed CA key revokes every certificate it signed.

Unlike authorized_keys, where a bad line only loses that line's key, any line here that
cannot be read (options in front of the key, an unknown key type, bad base64) or a KRL that
cannot be parsed revokes **every** key until the file is fixed, as sshd does: a list meant
to keep someone out must not let them in because their line has a typo. So does a file
that is missing, unreadable or writable by others (see :mod:`.filemodes`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .file_modes import check_not_writable_by_others, read_checked_bytes
from .krl import KRL_MAGIC, KeyRevocationList, KrlError, parse_krl

if TYPE_CHECKING:
    import asyncssh

__all__ = ["RevokedKeys", "precheck_revoked_keys"]

log = logging.getLogger("manhole_ssh.auth")


def precheck_revoked_keys(path: Path) -> None:
    """A revoked-keys file that is missing or unsafe would let revoked keys in: refuse it."""
    try:
        check_not_writable_by_others(path, "revoked_keys")
    except FileNotFoundError:
        raise ConfigError(
            f"revoked_keys {path} does not exist: create it (it may be empty)"
        ) from None


class _KeyList:
    """A revoked_keys file in the authorized_keys-like format: the plain keys it names."""

    def __init__(self, blobs: set[bytes]) -> None:
        self.blobs = blobs

    def key_revoked(self, key_blob: bytes) -> str | None:
        return "the key is listed" if key_blob in self.blobs else None

    def certificate_revoked(
        self, key_blob: bytes, ca_blob: bytes, serial: int, key_id: str
    ) -> str | None:
        if key_blob in self.blobs:
            return "certified key: the key is listed"
        if ca_blob in self.blobs:
            return "certificate authority: the key is listed"
        return None


def _parse_key_list(text: str, path: Path) -> _KeyList:
    """:raises ValueError: naming the first line that cannot be read."""
    import asyncssh

    blobs: set[bytes] = set()
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(None, 2)
        if len(words) < 2:
            raise ValueError(f"{path} line {number}: no key after {words[0]!r}")
        try:
            if words[0].endswith("-cert-v01@openssh.com"):
                certificate: Any = asyncssh.import_certificate(f"{words[0]} {words[1]}")
                key = certificate.key
            else:
                key = asyncssh.import_public_key(f"{words[0]} {words[1]}")
                if key.algorithm.decode("ascii") != words[0]:
                    raise ValueError(f"it says {words[0]} but holds a {key.algorithm.decode()} key")
        except (asyncssh.KeyImportError, ValueError) as error:
            raise ValueError(
                f"{path} line {number} is not a key as ssh-keygen writes it "
                f"(TYPE BASE64 [comment], no options): {error}"
            ) from None
        blobs.add(key.public_data)
    return _KeyList(blobs)


class RevokedKeys:
    """The revoked keys of one file, re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, ...] | None = None
        self._list: KeyRevocationList | _KeyList | None = None
        self._problem: str | None = None  # why every key is refused now

    def refusal(self, key: asyncssh.SSHKey, certificate: Any = None) -> str | None:
        """Why ``key`` is revoked, or ``None``; with ``certificate`` (an asyncssh
        ``SSHOpenSSHCertificate`` of ``key``), its serial, key ID and CA are checked too."""
        revocations = self._current()
        if revocations is None:
            return f"revoked_keys {self.path} cannot be used: {self._problem}"
        if certificate is None:
            reason = revocations.key_revoked(key.public_data)
        else:
            reason = revocations.certificate_revoked(
                key.public_data,
                certificate.signing_key.public_data,
                int(getattr(certificate, "_serial", 0) or 0),
                str(getattr(certificate, "_key_id", "") or ""),
            )
        return f"revoked in {self.path}: {reason}" if reason is not None else None

    def _current(self) -> KeyRevocationList | _KeyList | None:
        try:
            check_not_writable_by_others(self.path, "revoked_keys")
            file_stat = os.stat(self.path)
            signature = (
                file_stat.st_ino,
                file_stat.st_size,
                file_stat.st_mtime_ns,
                file_stat.st_ctime_ns,
            )
            if signature == self._signature:
                return self._list
            data = read_checked_bytes(self.path, "revoked_keys")
            if data.startswith(KRL_MAGIC):
                self._list = parse_krl(data)
            else:
                self._list = _parse_key_list(data.decode("utf-8", errors="replace"), self.path)
        except (OSError, ValueError, ConfigError) as error:  # KrlError is a ValueError
            problem = str(error) if not isinstance(error, OSError) else error.strerror
            if problem != self._problem:  # say it once, not at every login
                kind = "KRL " if isinstance(error, KrlError) else ""
                log.error("refusing every key until %s is fixed: %s%s", self.path, kind, problem)
            self._problem = problem or repr(error)
            self._signature, self._list = None, None
            return None
        if self._problem is not None or self._signature is None:
            log.info("revoked_keys %s loaded", self.path)
        self._problem = None
        self._signature = signature
        return self._list
