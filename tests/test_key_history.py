"""The REPL remembers its user: history and F2 settings per key (issue 12)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Keys, Terminal, ssh_argv, start_host, stop_host


def test_a_keys_history_is_shared_by_its_sessions_and_hidden_from_other_keys(
    keys: Keys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    terminals: Callable[..., Terminal],
) -> None:
    state_home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state_home))
    with keys.authorized_keys.open("ab") as authorized:  # a second user, with a key of hers
        authorized.write(keys.other_key.with_suffix(".pub").read_bytes())
    host = start_host(keys)
    try:
        first = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        first.wait_prompt()
        first.send("alice_secret_marker = 41 + 1\r")
        first.evaluate("alice_secret_marker", "42")
        # Another session of the same key, opened after (the first one still open), finds
        # it with Up.
        second = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        second.wait_prompt()
        second.send("\x1b[A")
        second.send("\x1b[A")
        second.expect(">>> alice_secret_marker = 41 + 1")
        second.send("\x15\x04")
        # Another key does not.
        other = terminals(ssh_argv(host.port, keys.other_key, "-tt", "127.0.0.1"))
        other.wait_prompt()
        other.send("\x1b[A")
        other.evaluate("'shown'", "'shown'")
        assert "alice_secret_marker" not in other.transcript
    finally:
        stop_host(host)
    folder = state_home / "manhole-ssh" / "history"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(path for path in folder.iterdir())
    assert files, "no history written"
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    holding = [path for path in files if "alice_secret_marker" in path.read_text()]
    assert len(holding) == 1 and "SHA256" not in holding[0].name  # named by a hash


def test_f2_settings_are_kept_for_the_key(
    keys: Keys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    terminals: Callable[..., Terminal],
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    host = start_host(keys)
    try:
        first = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        first.wait_prompt()
        first.send("\x1bOS")  # F4: Vi mode, as the F2 menu's "Editing mode" would
        first.expect("[F4] Vi")
        first.send("exit()\r")
        first.wait_exit()
        second = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        second.expect("[F4] Vi")
    finally:
        stop_host(host)
