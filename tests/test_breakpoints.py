"""Breakpoints that wait for an engineer, debugged from a session (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
    HOST_APP,
    Host,
    Keys,
    Terminal,
    exec_code,
    read_events,
    ssh_argv,
    start_host,
    stop_host,
    wait_for,
)


@pytest.fixture
def breaker_host(keys: Keys, tmp_path: Path) -> Iterator[tuple[Host, Path]]:
    """A threaded host whose thread host-breaker hits set_trace() in a loop once armed."""
    audit_file = tmp_path / "audit.jsonl"
    started = start_host(keys, "--breaker", "--set", f"audit_file={audit_file}")
    yield started, audit_file
    stop_host(started)


@pytest.fixture
def async_breaker_host(keys: Keys) -> Iterator[Host]:
    """An asyncio host whose task awaits set_trace_async() in a loop once armed."""
    started = start_host(keys, "--asyncio", "--breaker")
    yield started
    stop_host(started)


def _value(host: Host, keys: Keys, code: str) -> str:
    result = exec_code(host.port, keys.client_key, code)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _passed(host: Host, keys: Keys, name: str = "passed") -> bool:
    """Whether the breaker went past its breakpoint at least once."""
    return _value(host, keys, f"print(state.get({name!r}))") != "None"


def _arm_breakpoint(host: Host, keys: Keys) -> None:
    """Let the host's worker reach its breakpoint, and wait until it is listed as [1]."""
    _value(host, keys, "state['armed'] = True")
    wait_for(lambda: "[1]" in _value(host, keys, "breakpoints()"), 10, "a breakpoint")


def _open_repl(terminals: Callable[..., Terminal], host: Host, keys: Keys, **size: int) -> Terminal:
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"), **size)
    terminal.wait_prompt()
    return terminal


def test_a_thread_waits_is_announced_listed_and_debugged(
    breaker_host: tuple[Host, Path], keys: Keys, terminals: Callable[..., Terminal]
) -> None:
    host, audit_file = breaker_host
    terminal = _open_repl(terminals, host, keys, columns=110, rows=20)
    _value(host, keys, "state['armed'] = True")
    # The open session is told, above its prompt, which is drawn again below.
    screen = terminal.expect("breakpoint [1] waits in thread 'host-breaker'")
    assert any(line.startswith("manhole-ssh: breakpoint [1]") for line in screen.splitlines())
    terminal.wait_prompt()
    terminal.expect("[F2] Menu")  # ptpython's status bar too
    # A hot loop parks once: one breakpoint listed, the thread held there.
    terminal.evaluate("breakpoints()", "waiting for")
    listed = terminal.text()
    assert "[1] thread 'host-breaker' at " in listed and "host_app.py:" in listed
    assert "[2]" not in listed
    passed_before = _value(host, keys, "print(state.get('passed'))")
    assert passed_before == "None"
    terminal.send("attach()\r")
    terminal.expect("(Pdb)")
    # pdb on the thread's live frame, with line editing: a typo fixed with Backspace.
    terminal.send("p rounds * 1000x\x7f\r")
    terminal.wait_screen(lambda text: "000" in text.split("(Pdb)")[-2], "rounds * 1000")
    terminal.send("\x1b[A")  # Up: the line editor's history
    terminal.wait_screen(
        lambda text: text.rstrip().endswith("(Pdb) p rounds * 1000"), "the last command again"
    )
    terminal.send("\x15")  # Ctrl-U
    terminal.send("!state['armed'] = False\r")  # a statement, run in the thread's frame
    terminal.send("c\r")
    terminal.expect("breakpoint [1]: the thread went on")
    terminal.wait_prompt()
    wait_for(lambda: _passed(host, keys), 10, "thread to go on")
    events = [event["event"] for event in read_events(audit_file)]
    assert "breakpoint" in events and "breakpoint_attach" in events
    assert "breakpoint_detach" in events


def test_ctrl_c_lets_the_thread_go_and_its_line_stays_quiet(
    breaker_host: tuple[Host, Path], keys: Keys, terminals: Callable[..., Terminal]
) -> None:
    host, _ = breaker_host
    _arm_breakpoint(host, keys)
    terminal = _open_repl(terminals, host, keys)
    terminal.send("attach(1)\r")
    terminal.expect("(Pdb)")
    terminal.send("\x03")
    terminal.expect("breakpoint [1]: detached: the thread goes on")
    terminal.wait_prompt()
    wait_for(lambda: _passed(host, keys), 10, "thread to go on")
    # The loop goes on past the line, which stays quiet for breakpoint_timeout.
    first = int(_value(host, keys, "state['passed']"))
    wait_for(lambda: int(_value(host, keys, "state['passed']")) > first + 5, 10, "more rounds")
    assert _value(host, keys, "breakpoints()") == "No thread is waiting at a breakpoint."


def test_a_breakpoint_nobody_attaches_times_out(keys: Keys) -> None:
    host = start_host(keys, "--breaker", "--set", "breakpoint_timeout=0.5")
    try:
        _value(host, keys, "state['armed'] = True")
        wait_for(lambda: _value(host, keys, "print(state.get('passed'))") != "None", 15, "timeout")
    finally:
        stop_host(host)


def test_without_a_manhole_a_breakpoint_logs_and_goes_on() -> None:
    code = "for _ in range(3): breakpoint()\nprint('went on')"
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONBREAKPOINT": "manhole_ssh.breakpoint", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.stdout == "went on\n"
    # Said once for the line, not once per call.
    assert completed.stderr.count("no manhole runs in this process: going on") == 1


def test_a_coroutine_awaits_its_breakpoint_without_blocking_the_loop(
    async_breaker_host: Host, keys: Keys, terminals: Callable[..., Terminal]
) -> None:
    host = async_breaker_host
    _arm_breakpoint(host, keys)
    # The loop goes on while the coroutine waits.
    counter = int(_value(host, keys, "state['counter']"))
    wait_for(lambda: int(_value(host, keys, "state['counter']")) > counter, 10, "loop runs")
    terminal = _open_repl(terminals, host, keys)
    terminal.send("attach()\r")
    terminal.expect("(Pdb)")
    terminal.send("p rounds > 0\r")
    terminal.expect("True")
    terminal.send("detach\r")
    terminal.expect("breakpoint [1]: detached: the thread goes on")
    wait_for(lambda: _passed(host, keys, "passed_async"), 10, "resumed")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_debug_stops_a_running_thread_at_its_next_line(
    host: Host, keys: Keys, terminals: Callable[..., Terminal]
) -> None:
    terminal = _open_repl(terminals, host, keys)
    terminal.send("debug('MainThread')\r")
    terminal.expect("(Pdb)")
    assert "main()" in terminal.text()  # the host's main loop, stopped in place
    terminal.send("p state['counter'] >= 0\r")
    terminal.expect("True")
    frozen = terminal.text()
    terminal.send("c\r")
    terminal.expect("breakpoint [1]: the thread went on")
    terminal.wait_prompt()
    assert "Traceback" not in frozen
    counter = int(_value(host, keys, "state['counter']"))
    wait_for(lambda: int(_value(host, keys, "state['counter']")) > counter, 10, "main goes on")
    # Our sys.monitoring tool id is given back.
    assert _value(host, keys, "import sys; [sys.monitoring.get_tool(i) for i in range(6)]") == (
        "[None, None, None, None, None, None]"
    )


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.11 has no sys.monitoring")
def test_debug_says_it_needs_python_3_12(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.client_key, "debug('MainThread')")
    assert result.returncode == 1
    assert "debug(thread) needs Python 3.12 or later" in result.stderr


def test_a_session_that_leaves_mid_debugging_lets_the_thread_go(
    breaker_host: tuple[Host, Path], keys: Keys, terminals: Callable[..., Terminal]
) -> None:
    host, _ = breaker_host
    _arm_breakpoint(host, keys)
    terminal = _open_repl(terminals, host, keys)
    terminal.send("attach()\r")
    terminal.expect("(Pdb)")
    terminal.close()  # the engineer's connection drops at the pdb prompt
    wait_for(lambda: _passed(host, keys), 10, "the thread to go on")
    assert _value(host, keys, "breakpoints()") == "No thread is waiting at a breakpoint."


def test_attach_in_exec_mode_reads_commands_from_stdin(
    breaker_host: tuple[Host, Path], keys: Keys
) -> None:
    host, _ = breaker_host
    _arm_breakpoint(host, keys)
    commands = b"p rounds * 0 + 4242\n!state['armed'] = False\nc\n"
    result = exec_code(host.port, keys.client_key, "attach(1)", stdin=commands)
    assert result.returncode == 0, result.stderr
    assert "4242" in result.stdout
    assert "breakpoint [1]: the thread went on" in result.stdout
    wait_for(lambda: _passed(host, keys), 10, "the thread to go on")


def test_breakpoint_timeout_is_an_option_and_a_variable() -> None:
    from manhole_ssh.config import Config, ConfigError, environment_options

    assert environment_options({"MANHOLE_SSH_BREAKPOINT_TIMEOUT": "12.5"}) == {
        "breakpoint_timeout": 12.5
    }
    with pytest.raises(ConfigError, match="breakpoint_timeout must be a positive number"):
        Config.build(breakpoint_timeout=0)


def test_ctrl_c_while_pdb_runs_the_code_lets_the_thread_go(
    breaker_host: tuple[Host, Path], keys: Keys, terminals: Callable[..., Terminal]
) -> None:
    host, _ = breaker_host
    _arm_breakpoint(host, keys)
    terminal = _open_repl(terminals, host, keys)
    terminal.send("attach()\r")
    terminal.expect("(Pdb)")
    terminal.send("!state['armed'] = False; state['nap'] = 2\r")
    sleep_line = (
        HOST_APP.read_text().splitlines().index('        time.sleep(state.get("nap", 0.01))')
    )
    terminal.send(f"until {sleep_line + 1}\r")  # stop at the thread's sleep
    terminal.expect('-> time.sleep(state.get("nap", 0.01))')
    terminal.send("n\r")  # pdb runs the 2 s sleep: no prompt meanwhile
    terminal.send("\x03")
    terminal.expect("breakpoint [1]: detached: the thread goes on")
    terminal.wait_prompt()
    # The thread goes on untraced: it does not stop at a pdb prompt again.
    _value(host, keys, "state['nap'] = 0.01")
    first = int(_value(host, keys, "state['rounds']"))
    wait_for(lambda: int(_value(host, keys, "state['rounds']")) > first + 5, 15, "more rounds")


def test_a_waiting_coroutine_that_is_cancelled_leaves_the_list(
    async_breaker_host: Host, keys: Keys
) -> None:
    host = async_breaker_host
    _arm_breakpoint(host, keys)
    _value(host, keys, "host_loop.call_soon_threadsafe(state['breaker_task'].cancel)")
    wait_for(
        lambda: _value(host, keys, "breakpoints()") == "No thread is waiting at a breakpoint.",
        10,
        "the cancelled breakpoint to leave the list",
    )
    # And the loop is fine.
    counter = int(_value(host, keys, "state['counter']"))
    wait_for(lambda: int(_value(host, keys, "state['counter']")) > counter, 10, "loop runs")


def test_debug_refuses_the_manholes_own_threads(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.client_key, "debug('manhole-ssh')")
    assert result.returncode == 1
    assert "one of the manhole's own threads" in result.stderr
    assert _value(host, keys, "1 + 1") == "2"  # and the manhole goes on


def test_a_breakpoint_in_the_manholes_own_thread_goes_on(host: Host, keys: Keys) -> None:
    code = (
        "import manhole_ssh, threading\n"
        "done = threading.Event()\n"
        "manhole_ssh.installed()._loop.call_soon_threadsafe("
        "lambda: (manhole_ssh.set_trace(), done.set()))\n"
        "print(done.wait(10))"
    )
    assert _value(host, keys, code) == "True"
    assert _value(host, keys, "breakpoints()") == "No thread is waiting at a breakpoint."
