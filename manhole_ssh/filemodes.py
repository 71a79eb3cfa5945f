"""sshd's StrictModes, for the files that decide who gets in.

A file that someone else can write decides who runs code in this process, so it is refused,
as sshd refuses it: the file and every folder above it must be owned by the process user or
root and not be writable by group or others. A root-owned sticky folder such as ``/tmp`` is
accepted, since others cannot rename or replace what is in it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .config import ConfigError

__all__ = ["check_not_writable_by_others", "check_private"]


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (os.geteuid(), 0)


def check_not_writable_by_others(path: Path, what: str) -> None:
    """Raise :class:`ConfigError` unless only the process user or root can change ``path``.

    :param path: the file to check; its folders up to ``/`` are checked too.
    :param what: how the message names the file ("authorized_keys", "host key").
    """
    file_stat = path.stat()
    if not _owner_ok(file_stat):
        raise ConfigError(
            f"{what} {path} is owned by uid {file_stat.st_uid}, not by this process's user "
            f"(uid {os.geteuid()}) or root: run chown {os.geteuid()} {path}"
        )
    if file_stat.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{what} {path} is writable by {_who(file_stat.st_mode)}, so others could let "
            f"themselves in: run chmod 600 {path}"
        )
    for folder in path.resolve().parents:
        folder_stat = folder.stat()
        sticky_root = folder_stat.st_uid == 0 and folder_stat.st_mode & stat.S_ISVTX
        if not _owner_ok(folder_stat):
            raise ConfigError(
                f"{what} {path} is in folder {folder}, owned by uid {folder_stat.st_uid}: "
                "keep it in a folder owned by this process's user or root"
            )
        if folder_stat.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_root:
            raise ConfigError(
                f"{what} {path} is in folder {folder}, which is writable by "
                f"{_who(folder_stat.st_mode)}, so others could replace it: run chmod go-w {folder}"
            )


def check_private(path: Path, what: str) -> None:
    """Raise :class:`ConfigError` if ``path`` can be read by group or others (a private key)."""
    file_stat = path.stat()
    if file_stat.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what} {path} has mode {stat.S_IMODE(file_stat.st_mode):04o}: a private key must "
            f"be readable by its owner only: run chmod 600 {path}"
        )
    check_not_writable_by_others(path, what)


def _who(mode: int) -> str:
    names = [
        name for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if mode & bit
    ]
    return " and ".join(names)
