"""Terminal sessions recorded as asciicast v2 files, for ``asciinema play``.

With ``session_recordings=FOLDER``, each PTY session writes
``FOLDER/<UTC time>-<session>-<pid>.cast``: a header (terminal size, time, the identity as
title) and one ``[seconds, "o", text]`` line per write to the terminal, plus ``"r"`` lines
for resizes. That is what the user saw, with its timing; what they typed is in the audit
trail. The folder must be private (0700, made so if missing) and each file is 0600:
recordings hold whatever the session displayed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..access.file_modes import check_private
from ..errors import ConfigError

__all__ = ["Recording", "prepare_recordings_folder"]


def prepare_recordings_folder(folder: Path) -> None:
    """Make the folder (0700) if missing; refuse one that others can read or write."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"session_recordings folder {folder} cannot be made: {error.strerror}"
        ) from None
    check_private(folder, "session_recordings folder")


class Recording:
    """One session's asciicast file. Called on the server's loop only."""

    def __init__(self, file: IO[str], path: Path) -> None:
        self.path = path
        self._file = file
        self._started = time.monotonic()

    @classmethod
    def start(
        cls, folder: Path, session_id: str, identity: str, term: str, columns: int, rows: int
    ) -> Recording:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = folder / f"{stamp}-{session_id}-{os.getpid()}.cast"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        file = os.fdopen(descriptor, "w", encoding="utf-8")
        header = {
            "version": 2,
            "width": columns,
            "height": rows,
            "timestamp": int(time.time()),
            "title": f"manhole-ssh {session_id}: {identity}",
            "env": {"TERM": term},
        }
        file.write(json.dumps(header) + "\n")
        file.flush()
        return cls(file, path)

    def tee(self, send: Callable[[bytes], object]) -> Callable[[bytes], object]:
        """``send``, recording what goes through it."""

        def send_and_record(data: bytes) -> object:
            self._event("o", data.decode("utf-8", "replace"))
            return send(data)

        return send_and_record

    def resize(self, columns: int, rows: int) -> None:
        self._event("r", f"{columns}x{rows}")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def _event(self, kind: str, text: str) -> None:
        if self._file.closed:
            return
        elapsed = round(time.monotonic() - self._started, 6)
        self._file.write(json.dumps([elapsed, kind, text]) + "\n")
        self._file.flush()
