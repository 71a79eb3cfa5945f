"""The real OpenSSH client, isolated from the user's setup, and the screen it draws on."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyte

__all__ = ["AnsweringScreen", "ssh_argv"]


def ssh_argv(port: int, key: Path | None, *extra: str) -> list[str]:
    """The real OpenSSH client, isolated from the user's config, agent and known hosts."""
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=20",
        "-p",
        str(port),
    ]
    if key is not None:
        argv += ["-o", "IdentitiesOnly=yes", "-i", str(key)]
    return [*argv, *extra]


_ALTERNATE_SCREEN = 1049  # xterm's private mode: a second screen, the first kept as it was


class AnsweringScreen(pyte.Screen):  # type: ignore[misc]
    """A screen that answers the cursor-position request, as a terminal does, and has
    xterm's alternate screen (which pyte has not), as pagers and editors use it."""

    def __init__(self, columns: int, lines: int, reply: Callable[[str], None] | None) -> None:
        super().__init__(columns, lines)
        self._reply = reply
        self.cursor_requests = 0
        self._main_screen: tuple[dict[int, dict[int, Any]], Any] | None = None

    def set_mode(self, *modes: int, **options: Any) -> None:
        if options.get("private") and _ALTERNATE_SCREEN in modes and self._main_screen is None:
            lines = {row: dict(line) for row, line in self.buffer.items()}
            self._main_screen = (lines, copy.copy(self.cursor))
            self.erase_in_display(2)
        super().set_mode(*modes, **options)

    def reset_mode(self, *modes: int, **options: Any) -> None:
        if options.get("private") and _ALTERNATE_SCREEN in modes and self._main_screen:
            lines, self.cursor = self._main_screen
            self._main_screen = None
            self.buffer.clear()
            for row, line in lines.items():
                self.buffer[row].update(line)
            self.dirty.update(range(self.lines))
        super().reset_mode(*modes, **options)

    def write_process_input(self, data: str) -> None:
        self.cursor_requests += 1
        if self._reply is not None:
            self._reply(data)
