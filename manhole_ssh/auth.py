"""Who may get in: the authorized_keys file, read strictly and reloaded when it changes.

The file is OpenSSH's format. It is parsed here, line by line, rather than by asyncssh,
because asyncssh rejects a whole file for one bad line and silently ignores options it does
not enforce (``expiry-time``, ``restrict``). A line that cannot be used is logged with its
number and skipped; see :mod:`.keyoptions` for the options and why unknown ones void a line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .config import ConfigError
from .filemodes import check_not_writable_by_others

if TYPE_CHECKING:
    import asyncssh

    from .keyoptions import KeyOptions

__all__ = ["AuthorizedKey", "AuthorizedKeys", "precheck_authorized_keys", "precheck_revoked_keys"]

log = logging.getLogger("manhole_ssh.auth")

# The key types OpenSSH writes at the start of a line that has no options.
_KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-", "rsa-sha2-")


def _is_key_type(word: str) -> bool:
    return word.startswith(_KEY_TYPE_PREFIXES)


def _key_lines(text: str) -> list[tuple[int, str]]:
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def precheck_authorized_keys(path: Path) -> None:
    """Check, without importing asyncssh, that ``path`` can let someone in.

    Runs in the thread that calls ``install()`` so that a missing, empty or unsafe file is a
    :class:`ConfigError` there. Keys themselves are decoded later, off that thread.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ConfigError(
            f"authorized_keys {path} does not exist: nobody could log in. Create it with the "
            f"public keys allowed in (one per line, as in ~/.ssh/authorized_keys), or pass "
            f"authorized_keys=PATH"
        ) from None
    except OSError as error:
        raise ConfigError(f"authorized_keys {path} cannot be read: {error.strerror}") from None
    check_not_writable_by_others(path, "authorized_keys")
    if not _key_lines(text):
        raise ConfigError(
            f"authorized_keys {path} holds no key: nobody could log in. Add a public key "
            f"(e.g. the line in ~/.ssh/id_ed25519.pub)"
        )


def precheck_revoked_keys(path: Path) -> None:
    """A revoked-keys file that is missing or unsafe would let revoked keys in: refuse it."""
    if not path.exists():
        raise ConfigError(f"revoked_keys {path} does not exist: create it (it may be empty)")
    check_not_writable_by_others(path, "revoked_keys")


class AuthorizedKey(NamedTuple):
    """One usable line of the file."""

    key: asyncssh.SSHKey
    comment: str
    fingerprint: str
    line_number: int
    options: KeyOptions
    authority: AuthorizedKey | None = None  # by certificate: the CA line that signed it

    @property
    def identity(self) -> str:
        """What the logs call whoever logged in with this key: its comment (a certificate's
        key id), else its fingerprint."""
        return self.comment or self.fingerprint

    @property
    def authorized_by(self) -> str:
        """The fingerprint of the authorized_keys line that let this key in."""
        return self.authority.fingerprint if self.authority is not None else self.fingerprint


class AuthorizedKeys:
    """The keys of one authorized_keys file, re-read whenever the file changes.

    A key added to the file works on the next login and a key removed is refused on the
    next login, without a restart. If the file becomes unsafe (see :mod:`.filemodes`) or
    unreadable, every login is refused until it is fixed.
    """

    def __init__(self, path: Path, what: str = "authorized_keys") -> None:
        self.path = path
        self.what = what
        self._signature: tuple[int, int, int, int] | None = None
        self._failed = False  # the file could not be used last time we looked
        self._keys: dict[bytes, AuthorizedKey] = {}
        self._authorities: dict[bytes, AuthorizedKey] = {}

    def find(self, key: asyncssh.SSHKey) -> AuthorizedKey | None:
        """The entry for ``key``, or ``None`` if it may not log in. A ``cert-authority``
        line is not found here: a CA key signs certificates, it does not log in itself."""
        if not self.reload_if_changed():
            return None
        return self._keys.get(key.public_data)

    def find_authority(self, key: asyncssh.SSHKey) -> AuthorizedKey | None:
        """The ``cert-authority`` entry for a CA key, or ``None``."""
        if not self.reload_if_changed():
            return None
        return self._authorities.get(key.public_data)

    def listed(self, key: asyncssh.SSHKey) -> bool:
        """Whether the key is in the file at all (a revoked-keys list revokes CAs too)."""
        return self.find(key) is not None or self.find_authority(key) is not None

    def __len__(self) -> int:
        self.reload_if_changed()
        return len(self._keys) + len(self._authorities)

    def fingerprints(self) -> set[str]:
        """The fingerprints of the keys (and CAs) in the file now (none if it cannot be
        used)."""
        self.reload_if_changed()
        entries = [*self._keys.values(), *self._authorities.values()]
        return {entry.fingerprint for entry in entries}

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed; false if it cannot be used (every key refused)."""
        try:
            file_stat = os.stat(self.path)
            check_not_writable_by_others(self.path, self.what)
        except (OSError, ConfigError) as error:
            if self._signature is not None or not self._failed:  # say it once, not per login
                log.error("refusing every login: %s", error)
            self._failed = True
            self._signature = None
            self._keys, self._authorities = {}, {}
            return False
        self._failed = False
        signature = (
            file_stat.st_ino,
            file_stat.st_size,
            file_stat.st_mtime_ns,
            file_stat.st_ctime_ns,
        )
        if signature != self._signature:
            entries = self._parse(self.path.read_text(encoding="utf-8", errors="replace"))
            self._keys = {blob: e for blob, e in entries.items() if not e.options.cert_authority}
            self._authorities = {blob: e for blob, e in entries.items() if e.options.cert_authority}
            self._signature = signature
            log.info(
                "loaded %d key(s) and %d certificate authorities from %s",
                len(self._keys),
                len(self._authorities),
                self.path,
            )
        return True

    def _parse(self, text: str) -> dict[bytes, AuthorizedKey]:
        import asyncssh

        from .keyoptions import KeyOptions, split_options

        keys: dict[bytes, AuthorizedKey] = {}
        for line_number, line in _key_lines(text):
            options = KeyOptions()
            if not _is_key_type(line.split(None, 1)[0]):
                try:
                    option_text, line = split_options(line)
                    options = KeyOptions.parse(option_text)
                except ValueError as error:
                    log.warning("%s line %d skipped: %s", self.path, line_number, error)
                    continue
            words = line.split(None, 2)
            if len(words) < 2:
                log.warning(
                    "%s line %d skipped: no key data after %r", self.path, line_number, words[0]
                )
                continue
            try:
                key = asyncssh.import_public_key(f"{words[0]} {words[1]}")
            except (asyncssh.KeyImportError, ValueError) as error:
                log.warning("%s line %d skipped: %s", self.path, line_number, error)
                continue
            if key.algorithm.decode("ascii") != words[0]:
                log.warning(
                    "%s line %d skipped: it says %s but holds a %s key",
                    self.path,
                    line_number,
                    words[0],
                    key.algorithm.decode("ascii"),
                )
                continue
            keys[key.public_data] = AuthorizedKey(
                key=key,
                comment=words[2].strip() if len(words) > 2 else "",
                fingerprint=key.get_fingerprint("sha256"),
                line_number=line_number,
                options=options,
            )
        return keys
