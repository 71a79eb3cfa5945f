"""End to end: the real ``ssh`` client, in a real PTY, into a live host process."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from conftest import (
    Host,
    Keys,
    Terminal,
    exec_code,
    run_ssh,
    ssh_argv,
    start_host,
    stop_host,
    wait_for,
)

OpenTerminal = Callable[..., Terminal]


def open_repl(terminals: OpenTerminal, host: Host, keys: Keys, **options: object) -> Terminal:
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"), **options)
    terminal.expect("Logged in as alice@test")
    terminal.wait_prompt()
    return terminal


def is_true(host: Host, keys: Keys, expression: str) -> bool:
    """Ask the host, through an exec session, whether ``expression`` holds."""
    return exec_code(host.port, keys.client_key, expression).stdout == "True\n"


def test_repl_evaluates_in_the_host(terminals: OpenTerminal, host: Host, keys: Keys) -> None:
    terminal = open_repl(terminals, host, keys)
    assert f"(pid {host.process.pid})" in terminal.text()
    terminal.evaluate("1+41", "42")
    terminal.evaluate(f"import os; os.getpid() == {host.process.pid}", "True")
    terminal.evaluate("state['cache']['from_session'] = 7", ">>>")
    assert exec_code(host.port, keys.client_key, "state['cache']['from_session']").stdout == "7\n"


def test_prompt_and_results_come_without_cursor_position_answers(
    terminals: OpenTerminal, host: Host, keys: Keys
) -> None:
    """A client that never answers ESC[6n is asked once, never waited on."""
    terminal = open_repl(terminals, host, keys, answer_cpr=False)
    for number in range(3):
        terminal.evaluate(f"{number} + 1000", str(number + 1000))
    assert terminal.screen.cursor_requests == 1


def test_every_prompt_shows_its_status_bar(terminals: OpenTerminal, host: Host, keys: Keys) -> None:
    """Each prompt is drawn before the terminal has said where it is, and ptpython shows
    its status bar only when it knows the room below: on a fresh screen and once the
    screen has filled (and scrolls), every prompt shows it."""
    # 16 rows: the banner (9 lines since manhole_help() was added) must fit the first
    # screen, or it has scrolled away before open_repl() looks for it when it all arrives
    # in one read; 8 statements then fill the screen.
    terminal = open_repl(terminals, host, keys, rows=16)
    for number in range(8):
        terminal.expect("[F4]")
        terminal.evaluate(f"{number} + 1000", str(number + 1000))
    text = terminal.expect("[F4]")
    assert "Logged in as" not in text  # the banner has scrolled away


def test_typing_at_the_first_prompt_does_not_wait_for_a_cursor_answer(
    terminals: OpenTerminal, host: Host, keys: Keys
) -> None:
    """Typed (or pasted) as soon as the first prompt shows, a statement ran a whole second
    late, most times: the prompt, drawn again once the terminal answered the first
    ESC[6n, had asked again, and that answer went to the statement, so prompt_toolkit
    waited its second for it. (A function of time, but the bug is a one-second wait; a
    result is normally there in milliseconds.)"""
    for _ in range(5):
        terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_prompt()
        typed = time.monotonic()
        terminal.send("1+41\r")
        terminal.expect("42")
        assert time.monotonic() - typed < 0.5
        terminal.close()


def test_exec_prints_the_result_and_exits_zero(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.client_key, "len(state['cache']), 'x' * 3")
    assert (result.returncode, result.stdout, result.stderr) == (0, "(1, 'xxx')\n", "")


def test_exec_runs_statements_and_streams_their_output(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.client_key, "for i in range(3): print('line', i)")
    assert (result.returncode, result.stdout) == (0, "line 0\nline 1\nline 2\n")


def test_exec_exception_goes_to_stderr_with_status_one(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.client_key, "print('before'); 1/0")
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "Traceback (most recent call last):" in result.stderr
    assert 'File "<manhole>", line 1, in <module>' in result.stderr
    assert result.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "manhole_ssh" not in result.stderr  # the user's frames only


def test_exec_syntax_error_and_exit_codes(host: Host, keys: Keys) -> None:
    syntax = exec_code(host.port, keys.client_key, "1 +")
    assert syntax.returncode == 1 and "SyntaxError" in syntax.stderr
    assert exec_code(host.port, keys.client_key, "import sys; sys.exit(3)").returncode == 3
    assert exec_code(host.port, keys.client_key, "raise SystemExit").returncode == 0
    assert host.alive()


def test_script_on_stdin_without_pty(host: Host, keys: Keys) -> None:
    script = b"total = 0\nfor n in range(5):\n    total += n\nprint('total', total)\ntotal\n"
    result = run_ssh(host.port, keys.client_key, "-T", "127.0.0.1", stdin=script)
    assert (result.returncode, result.stdout) == (0, "total 10\n")  # a script shows no values
    failing = run_ssh(
        host.port, keys.client_key, "-T", "127.0.0.1", stdin=b"print(1)\nundefined_name\n"
    )
    assert failing.returncode == 1
    assert "NameError: name 'undefined_name' is not defined" in failing.stderr


def test_exec_code_reads_its_stdin(host: Host, keys: Keys) -> None:
    result = exec_code(
        host.port, keys.client_key, "import sys; len(sys.stdin.read())", stdin=b"x" * 100_000
    )
    assert (result.returncode, result.stdout) == (0, "100000\n")


def test_top_level_await_runs_on_the_host_loop(asyncio_host: Host, keys: Keys) -> None:
    code = "import asyncio; await asyncio.sleep(0.01); asyncio.get_running_loop() is host_loop"
    result = exec_code(asyncio_host.port, keys.client_key, code)
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n", "")


def test_top_level_await_without_a_host_loop(host: Host, keys: Keys) -> None:
    code = "import asyncio; await asyncio.sleep(0.01); 'awaited'"
    assert exec_code(host.port, keys.client_key, code).stdout == "'awaited'\n"


def test_threads_helper_marks_manhole_threads(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.client_key, "threads()")
    assert result.returncode == 0
    assert "Thread 'MainThread'" in result.stdout
    assert "in main" in result.stdout  # where the host's main thread is
    assert re.search(r"Thread 'manhole-ssh' \(ident \d+\) \[manhole", result.stdout)
    assert re.search(
        r"Thread 'manhole-ssh worker s\d+ \(alice@test\)'.*this session", result.stdout
    )


def test_sessions_have_their_own_names(terminals: OpenTerminal, host: Host, keys: Keys) -> None:
    first = open_repl(terminals, host, keys)
    second = open_repl(terminals, host, keys)
    first.evaluate("only_in_first = 'first-value'", ">>>")
    second.evaluate("'only_in_first' in globals()", "False")
    first.evaluate("only_in_first", "'first-value'")
    second.evaluate("state is not None and 'state' in globals()", "True")


def test_ctrl_c_interrupts_a_python_loop(terminals: OpenTerminal, host: Host, keys: Keys) -> None:
    terminal = open_repl(terminals, host, keys)
    terminal.send("while True: state['spins'] = state.get('spins', 0) + 1\r\r")
    wait_for(lambda: is_true(host, keys, "state.get('spins', 0) > 0"), 10, "the loop to run")
    terminal.send("\x03")
    terminal.expect("KeyboardInterrupt")
    terminal.wait_prompt()
    terminal.evaluate("6 * 7", "42")


def test_ctrl_c_on_a_statement_blocked_in_c(
    terminals: OpenTerminal, host: Host, keys: Keys
) -> None:
    terminal = open_repl(terminals, host, keys)
    terminal.evaluate("import threading, time; first = threading.current_thread().name", ">>>")
    terminal.send("state['sleeping'] = True; time.sleep(30)\r")
    wait_for(lambda: is_true(host, keys, "state.get('sleeping')"), 10, "the sleep to start")
    terminal.send("\x03")
    terminal.expect("blocked outside Python")
    terminal.wait_prompt()
    terminal.evaluate("threading.current_thread().name != first", "True")


def test_sys_exit_ends_the_session_not_the_host(
    terminals: OpenTerminal, host: Host, keys: Keys
) -> None:
    for statement in ("import sys; sys.exit()", "exit()", "quit()"):
        terminal = open_repl(terminals, host, keys)
        terminal.send(statement + "\r")
        assert terminal.wait_exit() == 0
        assert host.alive()
    terminal = open_repl(terminals, host, keys)
    terminal.send("\x04")  # Ctrl-D
    assert terminal.wait_exit() == 0
    assert exec_code(host.port, keys.client_key, "'still serving'").stdout == "'still serving'\n"


def test_host_output_stays_with_the_host(terminals: OpenTerminal, keys: Keys) -> None:
    from conftest import start_host, stop_host

    chatty = start_host(keys, "--chatty")
    try:
        terminal = open_repl(terminals, chatty, keys)
        before = chatty.read_output(0.2).count("host-line")
        terminal.evaluate(
            "print('session-only-marker'); import sys; print('err-marker', file=sys.stderr)",
            "err-marker",
        )
        wait_for(lambda: chatty.read_output(0.05).count("host-line") > before + 5, 10, "host lines")
        host_output = chatty.read_output()
        assert "session-only-marker" not in host_output and "err-marker" not in host_output
        assert "session-only-marker" in terminal.text()
        assert "host-line" not in terminal.transcript
    finally:
        stop_host(chatty)


def test_window_resize_redraws_at_the_new_width(
    terminals: OpenTerminal, host: Host, keys: Keys
) -> None:
    terminal = open_repl(terminals, host, keys, columns=100, rows=30)

    def status_bar_end() -> int:
        """ptpython right-aligns its status bar, leaving the last column free."""
        lines = [line.rstrip() for line in terminal.screen.display if "[F2] Menu" in line]
        return len(lines[-1]) + 1 if lines else 0

    wait_for(lambda: terminal.pump() and status_bar_end() == 100, 10, "status bar at width 100")
    terminal.resize(columns=70, rows=30)
    wait_for(lambda: terminal.pump() and status_bar_end() == 70, 10, "status bar at width 70")
    terminal.evaluate("'after resize'", "'after resize'")


def test_input_reads_a_typed_line(terminals: OpenTerminal, host: Host, keys: Keys) -> None:
    """Code that reads stdin (input(), pdb) gets lines typed on the terminal, echoed."""
    terminal = open_repl(terminals, host, keys)
    terminal.send("answer = input('who' + '? ')\r")  # the statement's echo is not the prompt
    terminal.expect("\nwho?")  # (the screen text has no trailing spaces)
    terminal.send("bobx\x7f\r")  # with a Backspace
    terminal.wait_prompt()
    terminal.evaluate("answer", "'bob'")
    assert "who? bob" in terminal.text()


def test_client_vanishing_mid_statement_leaves_no_thread(
    terminals: OpenTerminal, host: Host, keys: Keys
) -> None:
    terminal = open_repl(terminals, host, keys)
    terminal.send("while True: state['vanish'] = state.get('vanish', 0) + 1\r\r")
    wait_for(lambda: is_true(host, keys, "state.get('vanish', 0) > 0"), 10, "the loop to run")
    terminal.child.kill(9)  # the client dies without a word
    workers = "sum(1 for t in __import__('threading').enumerate() if 'worker' in t.name) == 1"
    wait_for(lambda: is_true(host, keys, workers), 10, "the session's worker thread to end")
    assert host.alive()


def test_garbage_and_truncated_handshakes_leave_the_host_serving(host: Host, keys: Keys) -> None:
    import os
    import socket

    for payload in (os.urandom(4096), b"SSH-2.0-OpenSSH_9.2\r\n" + os.urandom(64), b"SSH-2.0-"):
        with socket.create_connection(("127.0.0.1", host.port), timeout=10) as raw:
            raw.sendall(payload)
            raw.shutdown(socket.SHUT_WR)
            while raw.recv(65536):  # the server closes the connection
                pass
    assert exec_code(host.port, keys.client_key, "'still here'").stdout == "'still here'\n"


def test_a_traced_host_thread_keeps_running_across_statements(
    terminals: OpenTerminal, keys: Keys
) -> None:
    """On CPython 3.11, taking back an asynchronous exception (SetAsyncExc with NULL)
    left a flag that made any traced or profiled thread (debugger, coverage, profiler)
    spin forever at its next call; a statement's end used to do that."""
    host = start_host(keys, "--traced")
    try:
        for _ in range(3):
            assert exec_code(host.port, keys.client_key, "1").stdout == "1\n"
        terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_prompt()
        terminal.send("while True: state['spins'] = state.get('spins', 0) + 1\r\r")
        wait_for(lambda: is_true(host, keys, "state.get('spins', 0) > 0"), 10, "the loop to run")
        terminal.send("\x03")
        terminal.expect("KeyboardInterrupt")
        terminal.wait_prompt()

        def traced_count() -> int:
            return int(exec_code(host.port, keys.client_key, "state['traced']").stdout)

        first = traced_count()
        wait_for(lambda: traced_count() > first + 10, 10, "the traced host thread to go on")
    finally:
        stop_host(host)
