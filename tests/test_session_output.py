"""Everything a statement prints comes back to its session, and nothing else does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from conftest import Host, Keys, Terminal, exec_code, run_ssh, ssh_argv, start_host, stop_host

OpenTerminal = Callable[..., Terminal]

# A statement that prints before and after an await, from a task it creates and awaits, and
# from a task it leaves running, which prints once the statement has ended.
AWAITING_STATEMENT = """\
import asyncio
async def child():
    print('from-child-task')
print('before-await')
await asyncio.sleep(0.2)
await asyncio.get_running_loop().create_task(child())
print('after-await')
"""


def _chatty_asyncio_host(keys: Keys) -> Host:
    host = start_host(keys, "--asyncio", "--chatty-task")
    host.read_output(0.2)
    return host


def test_await_output_reaches_exec_and_script_sessions(keys: Keys) -> None:
    """A statement with top-level ``await`` runs on the host's loop thread, and printed
    there, to the host's stdout: exec and script sessions printed nothing and exited 0."""
    host = _chatty_asyncio_host(keys)
    try:
        result = exec_code(host.port, keys.client_key, AWAITING_STATEMENT)
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == "before-await\nfrom-child-task\nafter-await\n"
        script = run_ssh(
            host.port, keys.client_key, "-T", "127.0.0.1", stdin=AWAITING_STATEMENT.encode()
        )
        assert (script.returncode, script.stdout) == (0, result.stdout)
        printed_by_host = host.read_output(0.2)
        assert "await" not in printed_by_host and "child" not in printed_by_host
        # The host's own task on the same loop kept printing to the host's stdout.
        last = int(printed_by_host.rsplit("host-task-line ", 1)[1].split()[0])
        host.read_output(0.3)
        assert f"host-task-line {last + 5}" in host.read_output()
    finally:
        stop_host(host)


def test_await_output_reaches_the_repl(terminals: OpenTerminal, keys: Keys) -> None:
    host = _chatty_asyncio_host(keys)
    try:
        terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_prompt()
        terminal.send(
            "import asyncio; print('before-await'); await asyncio.sleep(0.1); "
            "asyncio.get_running_loop().call_later(0.3, print, 'from-later-callback'); "
            "print('after-await')\r"
        )
        terminal.expect("after-await")
        terminal.expect("from-later-callback")
        assert "before-await" in terminal.text()
        printed_by_host = host.read_output(0.1)
        assert "await" not in printed_by_host and "callback" not in printed_by_host
        assert "host-task-line" in printed_by_host
    finally:
        stop_host(host)


CHAINED = "try:\n    1/0\nexcept Exception as error:\n    raise ValueError('bad') from error\n"


def _as_python_shows(*argv: str, code: str) -> str:
    """The standard error of this Python running ``code`` (``-c CODE``, or ``-`` with the
    code on stdin)."""
    stdin = code if argv == ("-",) else None
    command = [sys.executable, *argv, *(() if stdin is not None else (code,))]
    return subprocess.run(command, input=stdin, capture_output=True, text=True).stderr


@pytest.mark.parametrize("code", ["def", "1 +", "1/0", CHAINED])
def test_tracebacks_show_only_the_users_code(host: Host, keys: Keys, code: str) -> None:
    """A SyntaxError in an exec session showed frames of session.py and executor.py above
    it; exec and script sessions now show what ``python -c`` and ``python -`` show."""
    result = exec_code(host.port, keys.client_key, code)
    expected = _as_python_shows("-c", code=code).replace('"<string>"', '"<manhole>"')
    assert (result.returncode, result.stderr) == (1, expected)
    script = run_ssh(host.port, keys.client_key, "-T", "127.0.0.1", stdin=code.encode())
    assert (script.returncode, script.stderr) == (1, _as_python_shows("-", code=code))


def test_tracebacks_of_awaited_code_show_only_the_users_code(
    terminals: OpenTerminal, asyncio_host: Host, keys: Keys
) -> None:
    code = "import asyncio\nawait asyncio.sleep(0)\n1/0"
    result = exec_code(asyncio_host.port, keys.client_key, code)
    assert result.returncode == 1
    assert result.stderr == (
        'Traceback (most recent call last):\n  File "<manhole>", line 3, in <module>\n'
        "ZeroDivisionError: division by zero\n"
    )
    terminal = terminals(ssh_argv(asyncio_host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.send("import asyncio; await asyncio.sleep(0); 1/0\r")
    terminal.expect("ZeroDivisionError")
    text = terminal.wait_prompt()
    assert "manhole_ssh" not in text and "concurrent" not in text
