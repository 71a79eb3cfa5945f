"""Who may get in: the authorized_keys file, read strictly and reloaded when it changes.

The file is OpenSSH's format. It is parsed here, line by line, rather than by asyncssh,
because asyncssh rejects a whole file for one bad line and silently ignores options it does
not enforce (``expiry-time``, ``restrict``). A line that cannot be used is logged with its
number and skipped; see :mod:`.keyoptions` for the options and why unknown ones void a line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import KeysCallable, KeySource, spelled
from ..errors import ConfigError
from .file_modes import check_not_writable_by_others, read_checked_text

if TYPE_CHECKING:
    import asyncssh

    from .key_options import KeyOptions

__all__ = [
    "AuthorizedKey",
    "AuthorizedKeys",
    "KeySource",
    "KeysCallable",
    "describe_sources",
    "precheck_authorized_keys",
]

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


def describe_sources(sources: Sequence[KeySource]) -> str:
    """How messages name the sources: the file, the files, or the callable."""
    return ", ".join(
        str(source) if isinstance(source, Path) else f"{_callable_name(source)}()"
        for source in sources
    )


def _callable_name(source: KeysCallable) -> str:
    return str(getattr(source, "__qualname__", None) or type(source).__name__)


def keys_from_callable(source: KeysCallable) -> str:
    """Call a key source; its lines as one text. :raises ConfigError: it failed."""
    try:
        result = source()
    except Exception as error:
        raise ConfigError(
            f"authorized_keys source {_callable_name(source)}() failed: {error!r}"
        ) from None
    if isinstance(result, str):
        return result
    try:
        return "\n".join(str(line) for line in result)
    except TypeError:
        raise ConfigError(
            f"authorized_keys source {_callable_name(source)}() must return a string or "
            f"lines, not {type(result).__name__}"
        ) from None


def _file_text(path: Path) -> str:
    try:
        return read_checked_text(path, "authorized_keys")
    except FileNotFoundError:
        raise ConfigError(
            f"authorized_keys {path} does not exist: nobody could log in. Create it with the "
            f"public keys allowed in (one per line, as in ~/.ssh/authorized_keys), or give "
            f"{spelled('authorized_keys', 'PATH')}"
        ) from None
    except OSError as error:
        raise ConfigError(f"authorized_keys {path} cannot be read: {error.strerror}") from None


def precheck_authorized_keys(sources: Sequence[KeySource]) -> None:
    """Check, without importing asyncssh, that the sources can let someone in.

    Runs in the thread that calls ``install()`` so that a missing, unsafe or empty source
    is a :class:`ConfigError` there. Keys themselves are decoded later, off that thread.
    """
    lines = 0
    for source in sources:
        text = _file_text(source) if isinstance(source, Path) else keys_from_callable(source)
        lines += len(_key_lines(text))
    if not lines:
        raise ConfigError(
            f"authorized_keys {describe_sources(sources)} holds no key: nobody could log in. "
            f"Add a public key (e.g. the line in ~/.ssh/id_ed25519.pub)"
        )


class AuthorizedKey(NamedTuple):
    """One usable line of the file."""

    key: asyncssh.SSHKey
    comment: str
    fingerprint: str
    line_number: int
    options: KeyOptions
    authority: AuthorizedKey | None = None  # by certificate: the CA line that signed it
    certificate: Any = None  # by certificate: the SSHOpenSSHCertificate itself

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

    def __init__(self, sources: Path | Sequence[KeySource], what: str = "authorized_keys") -> None:
        self.sources: tuple[KeySource, ...] = (
            (sources,) if isinstance(sources, Path) else tuple(sources)
        )
        self.path = describe_sources(self.sources)  # what messages call it
        self.what = what
        self._signature: tuple[object, ...] | None = None
        self._failed = False  # the file could not be used last time we looked
        # Every usable line of a key, in the order of the sources and their lines.
        self._keys: dict[bytes, list[AuthorizedKey]] = {}
        self._authorities: dict[bytes, list[AuthorizedKey]] = {}

    def match(self, key: asyncssh.SSHKey, source: str) -> tuple[AuthorizedKey | None, str]:
        """The line that lets ``key`` in from address ``source``, as sshd picks it: the
        first line for the key whose options allow the login (a line refused by ``from=``
        or ``expiry-time`` is passed over, as sshd passes it over); or why not."""
        if not self.reload_if_changed():
            return None, f"{self.path} cannot be used"
        return _first_allowed(self._keys.get(key.public_data, ()), source, self.path)

    def authorities(self, key: asyncssh.SSHKey) -> Sequence[AuthorizedKey]:
        """The ``cert-authority`` lines for a CA key, in the order of the sources."""
        if not self.reload_if_changed():
            return ()
        return self._authorities.get(key.public_data, ())

    def __len__(self) -> int:
        self.reload_if_changed()
        return len(self._keys) + len(self._authorities)

    def fingerprints(self) -> set[str]:
        """The fingerprints of the keys (and CAs) in the file now (none if it cannot be
        used)."""
        self.reload_if_changed()
        lines = [*self._keys.values(), *self._authorities.values()]
        return {entry.fingerprint for entries in lines for entry in entries}

    def reload_if_changed(self) -> bool:
        """Re-read the sources if they changed; false if one cannot be used (every key
        refused: a source meant to keep keys out, or in, must not fail open)."""
        try:
            signature, texts = self._look()
        except (OSError, ConfigError) as error:
            if self._signature is not None or not self._failed:  # say it once, not per login
                log.error("refusing every login: %s", error)
            self._failed = True
            self._signature = None
            self._keys, self._authorities = {}, {}
            return False
        self._failed = False
        if signature != self._signature:
            keys: dict[bytes, list[AuthorizedKey]] = {}
            authorities: dict[bytes, list[AuthorizedKey]] = {}
            for source, text in zip(self.sources, texts, strict=True):
                if text is None:
                    assert isinstance(source, Path)
                    text = read_checked_text(source, self.what)
                origin = str(source) if isinstance(source, Path) else describe_sources([source])
                for entry in self._parse(text, origin):
                    lines = authorities if entry.options.cert_authority else keys
                    lines.setdefault(entry.key.public_data, []).append(entry)
            self._keys, self._authorities = keys, authorities
            self._signature = signature
            log.info(
                "loaded %d key(s) and %d certificate authorities from %s",
                len(self._keys),
                len(self._authorities),
                self.path,
            )
        return True

    def _look(self) -> tuple[tuple[object, ...], list[str | None]]:
        """What identifies the sources' content now (a file's stat, a callable's text),
        and the callables' texts (files are read only if something changed)."""
        signature: list[object] = []
        texts: list[str | None] = []
        for source in self.sources:
            if isinstance(source, Path):
                file_stat = os.stat(source)
                check_not_writable_by_others(source, self.what)
                signature.append(
                    (
                        file_stat.st_ino,
                        file_stat.st_size,
                        file_stat.st_mtime_ns,
                        file_stat.st_ctime_ns,
                    )
                )
                texts.append(None)
            else:
                text = keys_from_callable(source)
                signature.append(text)
                texts.append(text)
        return tuple(signature), texts

    def _parse(self, text: str, origin: str) -> list[AuthorizedKey]:
        import asyncssh

        from .key_options import KeyOptions, split_options

        keys: list[AuthorizedKey] = []
        for line_number, line in _key_lines(text):
            options = KeyOptions()
            if not _is_key_type(line.split(None, 1)[0]):
                try:
                    option_text, line = split_options(line)
                    options = KeyOptions.parse(option_text)
                except ValueError as error:
                    log.warning("%s line %d skipped: %s", origin, line_number, error)
                    continue
            words = line.split(None, 2)
            if len(words) < 2:
                log.warning(
                    "%s line %d skipped: no key data after %r", origin, line_number, words[0]
                )
                continue
            try:
                key = asyncssh.import_public_key(f"{words[0]} {words[1]}")
            except (asyncssh.KeyImportError, ValueError) as error:
                log.warning("%s line %d skipped: %s", origin, line_number, error)
                continue
            if key.algorithm.decode("ascii") != words[0]:
                log.warning(
                    "%s line %d skipped: it says %s but holds a %s key",
                    origin,
                    line_number,
                    words[0],
                    key.algorithm.decode("ascii"),
                )
                continue
            keys.append(
                AuthorizedKey(
                    key=key,
                    comment=words[2].strip() if len(words) > 2 else "",
                    fingerprint=key.get_fingerprint("sha256"),
                    line_number=line_number,
                    options=options,
                )
            )
        return keys


def _first_allowed(
    entries: Iterable[AuthorizedKey], source: str, path: str
) -> tuple[AuthorizedKey | None, str]:
    first_refusal = None
    for entry in entries:
        refusal = entry.options.refusal(source)
        if refusal is None:
            return entry, ""
        first_refusal = first_refusal or refusal
    return None, first_refusal or f"key not in {path}"
