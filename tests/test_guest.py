"""A guest in someone else's process changes nothing of theirs: a host that uses
prompt_toolkit, ptpython and jedi itself finds them as they were after a session."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from conftest import Host, Keys, Terminal, exec_code, ssh_argv, start_host, stop_host


@pytest.fixture
def library_host(keys: Keys) -> Iterator[Host]:
    started = start_host(keys, "--uses-prompt-toolkit")
    yield started
    stop_host(started)


def _differences(host: Host, keys: Keys) -> str:
    return exec_code(host.port, keys.client_key, "print(library_state.differences(before))").stdout


def test_a_session_leaves_the_hosts_libraries_as_they_were(
    terminals: Callable[..., Terminal], library_host: Host, keys: Keys
) -> None:
    assert _differences(library_host, keys) == "[]\n"  # the host's own use changes nothing
    terminal = terminals(ssh_argv(library_host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.send("library_st\t")  # jedi completes the name
    terminal.expect(">>> library_state")
    terminal.send("\x15")  # Ctrl-U
    terminal.evaluate("[n * 2 for n in range(3)]", "[0, 2, 4]")
    terminal.send("\x1bOQ")  # F2: the options sidebar, then back
    terminal.expect("Complete while typing")
    terminal.send("\x1bOQ")
    terminal.wait_prompt()
    terminal.send("\x04")  # Ctrl-D
    assert terminal.wait_exit() == 0
    # The session lets go of its REPL on the manhole's loop once the client has gone.
    deadline = time.monotonic() + 15
    while (found := _differences(library_host, keys)) != "[]\n" and time.monotonic() < deadline:
        pass  # each look is a whole ssh exec: the wait is on a condition, not a sleep
    assert found == "[]\n"
    # Nor does the host keep the session's REPL, through the filters its own prompt_toolkit
    # use left on prompt_toolkit's (combinations of them that live as long).
    count = (
        "import gc; gc.collect(); print(sum(type(o).__name__ == 'Repl' for o in gc.get_objects()))"
    )
    assert exec_code(library_host.port, keys.client_key, count).stdout == "0\n"
