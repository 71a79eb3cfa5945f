"""What the REPL remembers of each key: its input history and its F2 settings.

Kept under ``$XDG_STATE_HOME/manhole-ssh/history/`` (``~/.local/state`` if unset), a
folder of mode 0700, in files of mode 0600 named by a hash of the key's fingerprint:
``<hash>`` (REPL lines), ``<hash>.pdb`` (debugger commands), ``<hash>.settings.json``.
The sessions of one key share them (each session reads them when it starts, and adds to
them as it goes); a key never reads another key's files. A key that logged in without a
fingerprint (none known) gets a history that lasts the session.

The file is opened as ``filemodes.open_checked`` opens the files that decide who gets in
(``O_NOFOLLOW``, owner and modes checked on the open descriptor), and kept bounded: past
:data:`MAX_BYTES` it is rewritten with its newest :data:`MAX_ENTRIES` entries, through a
temporary file renamed over it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prompt_toolkit.history import History, InMemoryHistory

from ..access.file_modes import check_private, open_checked
from ..errors import ConfigError

__all__ = [
    "MAX_BYTES",
    "MAX_ENTRIES",
    "KeyHistory",
    "history_for",
    "load_settings",
    "save_settings",
]

log = logging.getLogger("manhole_ssh.history")

MAX_ENTRIES = 1000  # kept when the file is compacted
MAX_BYTES = 1024 * 1024  # past this size the file is compacted
MAX_ENTRY_CHARS = 16 * 1024  # a longer entry (a pasted blob) is not written
# F2 settings that are kept: plain switches of ptpython, read back only if still bools.
SETTINGS = (
    "vi_mode",
    "show_signature",
    "show_docstring",
    "complete_while_typing",
    "enable_history_search",
    "enable_auto_suggest",
    "enable_fuzzy_completion",
    "enable_dictionary_completion",
    "complete_private_attributes",
    "show_line_numbers",
    "show_status_bar",
    "wrap_lines",
    "highlight_matching_parenthesis",
    "insert_blank_line_after_output",
    "insert_blank_line_after_input",
    "enable_syntax_highlighting",
    "swap_light_and_dark",
    "enable_mouse_support",
)


def state_folder() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state_home) / "manhole-ssh" / "history"


def _key_file(fingerprint: str, suffix: str) -> Path:
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    return state_folder() / f"{digest}{suffix}"


def _prepared(path: Path) -> Path:
    """``path``, its folder made (0700) and checked private. :raises ConfigError:"""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private(folder, "history folder")
    return path


class KeyHistory(History):
    """prompt_toolkit's ``FileHistory`` format, written safely and kept bounded.

    :param path: the key's history file (made with mode 0600).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def load_history_strings(self) -> Iterable[str]:
        try:
            descriptor = open_checked(self.path, "history file", os.O_RDONLY, private=True)
        except FileNotFoundError:
            return []
        except ConfigError as error:
            log.warning("%s: not read", error)
            return []
        with os.fdopen(descriptor, "rb") as file:
            content = file.read(MAX_BYTES * 2)
            oversized = bool(file.read(1)) or len(content) > MAX_BYTES
        entries = _parse(content.decode("utf-8", "replace"))[-MAX_ENTRIES:]
        if oversized:
            self._rewrite(entries)
        return list(reversed(entries))

    def store_string(self, string: str) -> None:
        if len(string) > MAX_ENTRY_CHARS:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        try:
            descriptor = open_checked(self.path, "history file", flags, private=True)
        except ConfigError as error:
            log.warning("%s: not written", error)
            return
        with os.fdopen(descriptor, "ab") as file:
            file.write(_format(string).encode("utf-8", "replace"))

    def _rewrite(self, entries: list[str]) -> None:
        """Keep the newest entries only: written beside, then renamed over the file."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(temporary, flags, 0o600)
        except OSError as error:
            log.warning("history file %s not compacted: %s", self.path, error)
            return
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write("".join(_format(entry) for entry in entries).encode())
            os.replace(temporary, self.path)
        except OSError as error:
            log.warning("history file %s not compacted: %s", self.path, error)
            temporary.unlink(missing_ok=True)


def _format(entry: str) -> str:
    return "\n" + "".join(f"+{line}\n" for line in entry.split("\n"))


def _parse(text: str) -> list[str]:
    entries: list[str] = []
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("+"):
            lines.append(line[1:])
        elif lines:
            entries.append("".join(lines)[:-1])
            lines = []
    if lines:
        entries.append("".join(lines)[:-1])
    return entries


def history_for(fingerprint: str | None, kind: str = "") -> History:
    """The history of the key with ``fingerprint`` (``kind`` "pdb": its debugger's)."""
    if fingerprint is None:
        return InMemoryHistory()
    try:
        return KeyHistory(_prepared(_key_file(fingerprint, f".{kind}" if kind else "")))
    except (ConfigError, OSError) as error:
        log.warning("history of %s kept for this session only: %s", fingerprint, error)
        return InMemoryHistory()


def load_settings(fingerprint: str | None) -> dict[str, Any]:
    """The F2 settings the key saved (only known switches with bool values)."""
    if fingerprint is None:
        return {}
    path = _key_file(fingerprint, ".settings.json")
    try:
        descriptor = open_checked(path, "settings file", os.O_RDONLY, private=True)
    except FileNotFoundError:
        return {}
    except ConfigError as error:
        log.warning("%s: not read", error)
        return {}
    with os.fdopen(descriptor, "rb") as file:
        try:
            saved = json.loads(file.read(64 * 1024))
        except ValueError:
            return {}
    if not isinstance(saved, dict):
        return {}
    return {name: saved[name] for name in SETTINGS if isinstance(saved.get(name), bool)}


def save_settings(fingerprint: str | None, settings: Mapping[str, Any]) -> None:
    if fingerprint is None:
        return
    chosen = {name: settings[name] for name in SETTINGS if isinstance(settings.get(name), bool)}
    try:
        path = _prepared(_key_file(fingerprint, ".settings.json"))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        descriptor = open_checked(path, "settings file", flags, private=True)
    except (ConfigError, OSError) as error:
        log.warning("settings of %s not saved: %s", fingerprint, error)
        return
    with os.fdopen(descriptor, "w") as file:
        json.dump(chosen, file)
