"""sshd's StrictModes, for the files that decide who gets in, and safe opening of them.

A file that someone else can write decides who runs code in this process, so it is refused,
as sshd refuses it: the file and every folder above it must be owned by the process user or
root and not be writable by group or others. A root-owned sticky folder such as ``/tmp`` is
accepted, since others cannot rename or replace what is in it.

Symbolic links: a link that sits in a folder others can write (``/tmp`` included: anyone may
plant a link there before the manhole starts) is refused, naming it; a user's own link in a
private folder is followed. A file is opened at its real path with ``O_NOFOLLOW``, and the
checks are made on the open descriptor (``fstat``), so a link swapped in after the check is
not followed and the file checked is the file used. Every problem is a :class:`ConfigError`
that names the file and what to do.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "check_not_writable_by_others",
    "check_opened",
    "check_private",
    "open_checked",
    "read_checked_bytes",
    "read_checked_text",
    "resolve_checked",
]

_MAX_LINKS = 40  # as the kernel's ELOOP limit


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (os.geteuid(), 0)


def _writable_by_others(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _os_error(what: str, path: Path, error: OSError) -> ConfigError:
    return ConfigError(
        f"{what} {path} cannot be used: {error.strerror or error}: check the permissions of "
        f"it and of its folders, or choose another path"
    )


def resolve_checked(path: Path, what: str) -> Path:
    """The real path of ``path``, refusing a symlink on the way that sits in a folder
    others can write. Missing components are kept as they are (the file may be made)."""
    pending = list(Path(path).absolute().parts[1:])  # '..' is resolved as the kernel does
    current = Path("/")
    links = 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        candidate = current / name
        try:
            candidate_stat = os.lstat(candidate)
        except FileNotFoundError:
            return candidate.joinpath(*pending)
        except OSError as error:
            raise _os_error(what, path, error) from None
        if not stat.S_ISLNK(candidate_stat.st_mode):
            current = candidate
            continue
        try:
            folder_stat = os.stat(current)
            target = os.readlink(candidate)
        except OSError as error:
            raise _os_error(what, path, error) from None
        if _writable_by_others(folder_stat) or not _owner_ok(folder_stat):
            raise ConfigError(
                f"{what} {path} is reached through the symlink {candidate}, which sits in "
                f"{current}, a folder others can write, so the link could point anywhere: "
                f"name the real file ({os.path.realpath(candidate)}) instead, or keep the "
                f"link in a folder only you can write"
            )
        links += 1
        if links > _MAX_LINKS:
            raise ConfigError(f"{what} {path}: too many levels of symlinks")
        if target.startswith("/"):
            current = Path("/")
        pending[:0] = Path(target).parts[1:] if target.startswith("/") else Path(target).parts
    return current


def _check_stat(path: Path, what: str, file_stat: os.stat_result) -> None:
    if not _owner_ok(file_stat):
        raise ConfigError(
            f"{what} {path} is owned by uid {file_stat.st_uid}, not by this process's user "
            f"(uid {os.geteuid()}) or root: run chown {os.geteuid()} {path}"
        )
    if _writable_by_others(file_stat):
        fix = "chmod go-w" if stat.S_ISDIR(file_stat.st_mode) else "chmod 600"
        raise ConfigError(
            f"{what} {path} is writable by {_who(file_stat.st_mode)}, so others could let "
            f"themselves in: run {fix} {path}"
        )


def _check_folders(path: Path, real: Path, what: str) -> None:
    for folder in real.parents:
        try:
            folder_stat = folder.stat()
        except OSError as error:
            raise _os_error(what, path, error) from None
        sticky_root = folder_stat.st_uid == 0 and folder_stat.st_mode & stat.S_ISVTX
        if not _owner_ok(folder_stat):
            raise ConfigError(
                f"{what} {path} is in folder {folder}, owned by uid {folder_stat.st_uid}: "
                "keep it in a folder owned by this process's user or root"
            )
        if _writable_by_others(folder_stat) and not sticky_root:
            raise ConfigError(
                f"{what} {path} is in folder {folder}, which is writable by "
                f"{_who(folder_stat.st_mode)}, so others could replace it: run chmod go-w {folder}"
            )


def _stat(path: Path, real: Path, what: str) -> os.stat_result:
    """``lstat`` of the real path; a missing file stays FileNotFoundError (callers say how
    to make it), any other OSError becomes a ConfigError."""
    try:
        return os.stat(real, follow_symlinks=False)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise _os_error(what, path, error) from None


def check_not_writable_by_others(path: Path, what: str) -> None:
    """Raise :class:`ConfigError` unless only the process user or root can change ``path``.

    :param path: the file to check; its folders up to ``/`` are checked too.
    :param what: how the message names the file ("authorized_keys", "host key").
    """
    real = resolve_checked(path, what)
    file_stat = _stat(path, real, what)
    _check_stat(path, what, file_stat)
    _check_folders(path, real, what)


def check_private(path: Path, what: str) -> None:
    """Raise :class:`ConfigError` if ``path`` can be read by group or others (a private key)."""
    real = resolve_checked(path, what)
    _check_mode_private(path, what, _stat(path, real, what))
    check_not_writable_by_others(path, what)


def _check_mode_private(path: Path, what: str, file_stat: os.stat_result) -> None:
    if file_stat.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        kind = "folder" if stat.S_ISDIR(file_stat.st_mode) else "file"
        fix = "chmod 700" if kind == "folder" else "chmod 600"
        raise ConfigError(
            f"{what} {path} has mode {stat.S_IMODE(file_stat.st_mode):04o}: this {kind} must "
            f"be readable by its owner only: run {fix} {path}"
        )


def open_checked(path: Path, what: str, flags: int = os.O_RDONLY, *, private: bool = False) -> int:
    """Open ``path`` safely and return the descriptor (the caller closes it).

    The real path is opened with ``O_NOFOLLOW`` (a link swapped in after
    :func:`resolve_checked` is refused, not followed) and the opened file itself is
    checked: owned by this user or root, not writable by others (nor readable, with
    ``private``), its folders likewise. A file made by ``O_CREAT`` gets mode 0600.
    """
    real = resolve_checked(path, what)
    try:
        descriptor = os.open(real, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:  # the last part became a symlink after the check
            raise ConfigError(
                f"{what} {path} became a symlink while it was being opened: refused; "
                f"check who can write {real.parent}"
            ) from None
        if isinstance(error, FileNotFoundError):
            raise
        raise _os_error(what, path, error) from None
    try:
        check_opened(descriptor, path, what, private=private)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def check_opened(descriptor: int, path: Path, what: str, *, private: bool = False) -> None:
    """Check the file open on ``descriptor`` (the one in use, whatever the path names now)
    and the folders of ``path``'s real path. :raises ConfigError: with the fix."""
    _check_stat(path, what, os.fstat(descriptor))
    if private:
        _check_mode_private(path, what, os.fstat(descriptor))
    _check_folders(path, resolve_checked(path, what), what)


def read_checked_bytes(path: Path, what: str) -> bytes:
    """The content of ``path``, opened with :func:`open_checked`."""
    descriptor = open_checked(path, what)
    with os.fdopen(descriptor, "rb") as file:
        return file.read()


def read_checked_text(path: Path, what: str) -> str:
    """The text of ``path`` (UTF-8, bad bytes replaced), opened with :func:`open_checked`."""
    return read_checked_bytes(path, what).decode("utf-8", errors="replace")


def _who(mode: int) -> str:
    names = [
        name for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if mode & bit
    ]
    return " and ".join(names)
