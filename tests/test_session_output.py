"""Everything a statement prints comes back to its session, and nothing else does."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from conftest import (
    Host,
    Keys,
    Terminal,
    asyncssh_client,
    exec_code,
    run_ssh,
    ssh_argv,
    start_host,
    stop_host,
    wait_for,
)
from test_adversarial import rss_kb
from test_green import green_host  # noqa: F401 (a fixture)

OpenTerminal = Callable[..., Terminal]

# A statement that prints before and after an await, and from a task it creates on the loop.
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
    """An asyncio host whose own task prints ``host-task-line <n>`` every 20 ms."""
    return start_host(keys, "--asyncio", "--chatty-task")


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
        wait_for(
            lambda: f"host-task-line {last + 5}\n" in host.read_output(0.05),
            10,
            "the host's task to go on printing to the host's stdout",
        )
    finally:
        stop_host(host)


def test_output_of_a_task_prints_above_the_prompt_not_into_it(
    terminals: OpenTerminal, asyncio_host: Host, keys: Keys
) -> None:
    """A task an earlier statement started printed at the cursor, into the line being
    typed at the prompt (">>> 1 + late")."""
    terminal = terminals(ssh_argv(asyncio_host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.send(
        "await asyncio.sleep(0); asyncio.get_running_loop().call_later(0.5, print, 'late')\r"
    )
    terminal.expect("TimerHandle")
    terminal.wait_prompt()
    terminal.send("1 + ")
    text = terminal.wait_screen(
        lambda text: ">>> 1 +" in text.partition("\nlate\n")[2], "'late', then the prompt below"
    )
    assert ">>> 1 + late" not in text
    terminal.evaluate("2", "3")


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


@pytest.mark.parametrize("code", ["def", CHAINED])
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
    source_line = "    1/0\n    ~^~\n" if sys.version_info >= (3, 13) else ""  # as python -c
    assert result.stderr == (
        'Traceback (most recent call last):\n  File "<manhole>", line 3, in <module>\n'
        f"{source_line}ZeroDivisionError: division by zero\n"
    )
    terminal = terminals(ssh_argv(asyncio_host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.send("import asyncio; await asyncio.sleep(0); 1/0\r")
    terminal.expect("ZeroDivisionError")
    text = terminal.wait_prompt()
    assert "manhole_ssh" not in text and "concurrent" not in text


def test_sys_and_asyncio_are_there_as_the_hints_say(host: Host, keys: Keys) -> None:
    """The demo's banner suggests ``await asyncio.sleep(1)`` and the docs ``sys.exit()``:
    in a fresh session both were a NameError."""
    assert exec_code(host.port, keys.client_key, "sys.exit(3)").returncode == 3
    slept = exec_code(host.port, keys.client_key, "await asyncio.sleep(0.01); 'slept'")
    assert (slept.returncode, slept.stdout, slept.stderr) == (0, "'slept'\n", "")


def test_sh_runs_a_command_with_its_output_in_the_session(host: Host, keys: Keys) -> None:
    """A child started the plain way writes to the host's descriptors (as documented);
    ``sh`` streams its output and errors to the session and returns its exit status."""
    result = exec_code(host.port, keys.client_key, "sh('echo out; echo err >&2; exit 3')")
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n3\n", "err\n")
    listed = exec_code(host.port, keys.client_key, "sh(['printf', '%s\\n', 'a b', 'ü'])")
    assert listed.stdout == "a b\nü\n0\n"
    plain = exec_code(host.port, keys.client_key, "os = __import__('os'); os.system('echo plain')")
    assert plain.stdout == "0\n"
    printed_by_host = host.read_output(0.5)
    assert "plain" in printed_by_host and "out" not in printed_by_host


def test_ctrl_c_ends_the_command_of_sh(terminals: OpenTerminal, host: Host, keys: Keys) -> None:
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.send("sh('echo child=$$; exec sleep 60')\r")
    shown = terminal.wait_screen(lambda text: re.search(r"child=\d+\n", text), "its pid")
    pid = int(re.findall(r"child=(\d+)\n", shown)[0])
    assert os.path.exists(f"/proc/{pid}")
    terminal.send("\x03")
    terminal.expect("KeyboardInterrupt")
    terminal.wait_prompt()
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 5, "the child killed and reaped")
    terminal.evaluate("sh('exit 4')", "4")


def _help_pages(text: str) -> bool:
    return "class str(object)" in text and "lines 1-29 of" in text


def test_help_pages_in_the_session(terminals: OpenTerminal, host: Host, keys: Keys) -> None:
    """help() started ``less`` writing to the host's stdout (and pydoc kept that pager
    for the whole process); it now pages on the session's terminal."""
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"), rows=30)
    terminal.wait_prompt()
    terminal.send("help(str)\r")
    terminal.wait_screen(_help_pages, "the first page of help(str)")
    terminal.send(" ")
    terminal.expect("lines 30-58 of")
    terminal.send("j")
    terminal.expect("lines 31-59 of")
    terminal.send("b")
    terminal.expect("lines 2-30 of")
    terminal.send("G")
    terminal.expect("(END)")
    terminal.send("g")
    terminal.wait_screen(_help_pages, "the first page again")
    terminal.send("/return a copy\r")  # lower case: any case matches, as less -i
    first_match = terminal.wait_screen(
        lambda text: "Return a copy" in text.splitlines()[0], "the first match on top"
    ).splitlines()[0]
    terminal.send("n")
    terminal.wait_screen(
        lambda text: (
            "Return a copy" in text.splitlines()[0] and text.splitlines()[0] != first_match
        ),
        "the next match on top",
    )
    terminal.send("/no such text\r")
    terminal.expect("Not found: no such text")
    terminal.send("q")
    terminal.wait_prompt()
    terminal.evaluate("import pydoc; pydoc.pager.__name__", "'pager'")
    terminal.evaluate("help('if')", 'The "if" statement')  # fits on the screen: just shown
    terminal.send("help(dict)\r")
    terminal.expect("class dict(object)")
    terminal.send("\x03")
    terminal.expect("KeyboardInterrupt")
    terminal.wait_prompt()
    terminal.evaluate("1+41", "42")
    assert "class str" not in host.read_output(0.2)


def test_help_is_plain_text_without_a_terminal(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.client_key, "help(str); help('True')")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("Help on class str in module builtins:\n")
    assert "Help on bool object" in result.stdout
    assert "\b" not in result.stdout  # no pager bold codes
    unchanged = exec_code(
        host.port, keys.client_key, "import pydoc; pydoc.pager.__name__, type(pydoc.help).__name__"
    )
    assert unchanged.stdout == "('pager', 'Helper')\n"
    assert "class str" not in host.read_output(0.2)


def _dropping(host: Host, keys: Keys) -> bool:
    """Whether a session of ``host`` is dropping output printed on the host's loop (its
    client is that far behind), as seen from another session."""
    probe = (
        "import gc; any(getattr(thing, '_dropping', False) for thing in gc.get_objects() "
        "if type(thing).__name__ == 'ChannelOutput')"
    )
    return exec_code(host.port, keys.client_key, probe).stdout == "True\n"


def test_a_client_that_stops_reading_never_stalls_the_host_loop(keys: Keys) -> None:
    """What a statement's coroutine prints on the host's loop goes to the session; a writer
    there must not wait for a client that stopped reading (the host's whole loop would
    wait with it): past a bound, that output is dropped instead, and memory stays flat."""
    host = start_host(keys, "--asyncio")
    assert exec_code(host.port, keys.client_key, "'warm'").returncode == 0
    before = rss_kb(host.process.pid)
    flood_code = "while True:\n    print('x' * 1000)\n    await asyncio.sleep(0)\n"
    flood = subprocess.Popen(
        ssh_argv(host.port, keys.client_key, "127.0.0.1", flood_code),
        stdout=subprocess.PIPE,  # never read
        stderr=subprocess.DEVNULL,
    )
    try:

        def counter() -> int:
            return int(exec_code(host.port, keys.client_key, "state['counter']").stdout)

        wait_for(lambda: _dropping(host, keys), 20, "the flood's output to be dropped")
        first = counter()
        wait_for(lambda: counter() > first + 5, 10, "the host's loop to go on ticking")
        assert rss_kb(host.process.pid) - before < 20_000
    finally:
        flood.kill()
        flood.wait()
        stop_host(host)


def test_output_dropped_on_the_host_loop_is_accounted_for(asyncio_host: Host, keys: Keys) -> None:
    """Every character printed on the host's loop for a client that stopped reading for a
    while either arrives or is counted in the notice the session gets: none goes silently."""
    lines = 20_000
    code = (
        f"for i in range({lines}):\n    print('x' * 999)\n    await asyncio.sleep(0)\n"
        "while not state.get('read_again'):\n    await asyncio.sleep(0.01)\n"
    )  # the session stays, and so does its dropping, until the client reads again

    async def read_after_a_pause() -> str:
        async with asyncssh_client(asyncio_host.port, client_keys=[str(keys.client_key)]) as conn:
            process = await conn.create_process(code)
            conn._transport.pause_reading()  # reads nothing until output is being dropped
            await asyncio.to_thread(
                wait_for, lambda: _dropping(asyncio_host, keys), 20, "output to be dropped"
            )
            conn._transport.resume_reading()
            exec_code(asyncio_host.port, keys.client_key, "state['read_again'] = True")
            return str(await asyncio.wait_for(process.stdout.read(), 30))

    received = asyncio.run(read_after_a_pause())
    notices = re.findall(
        r"\[manhole-ssh: (\d+) characters printed on the service's event", received
    )
    assert notices, "the session was not told"
    # Counted by character, not by line: print() writes the x's and the newline in two
    # writes, and dropping may start or stop between them. Each notice adds two newlines.
    delivered = received.count("x") + received.count("\n") - 2 * len(notices)
    assert delivered + sum(map(int, notices)) == lines * 1000


def test_stdin_is_not_read_on_the_host_loop(terminals: OpenTerminal, keys: Keys) -> None:
    """input() in a statement that awaits ran on the host's loop and stopped it until a
    line came; Ctrl-C (a callback on that same loop) could not end the wait, and the keys
    typed after the statement was given up went to the prompt: the host's loop stayed
    stopped until the session ended. It is refused now, with the reason."""
    host = start_host(keys, "--asyncio")
    try:
        terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_prompt()
        terminal.send("await asyncio.sleep(0); input('name? ')\r")
        terminal.expect("cannot be read on the service's event loop")
        terminal.wait_prompt()

        def counter() -> int:
            return int(exec_code(host.port, keys.client_key, "state['counter']").stdout)

        first = counter()
        wait_for(lambda: counter() > first + 2, 10, "the host's loop to go on ticking")
        terminal.send("input('name? ')\r")  # without await: read in its own thread
        terminal.wait_screen(
            lambda text: terminal.screen.display[terminal.screen.cursor.y].rstrip() == "name?",
            "input()'s prompt",
        )
        terminal.evaluate("alice", "'alice'")
    finally:
        stop_host(host)


def test_sh_and_help_never_hold_the_host_loop(
    terminals: OpenTerminal, asyncio_host: Host, keys: Keys
) -> None:
    """A statement that awaits runs on the host's loop, whole: sh() there would stop the
    loop until the command ended (and Ctrl-C could not end it), and help's pager until q."""
    refused = exec_code(asyncio_host.port, keys.client_key, "await asyncio.sleep(0); sh('echo hi')")
    assert refused.returncode == 1
    assert "sh() on the service's event loop would stop the loop" in refused.stderr
    threaded = "await asyncio.to_thread(sh, 'echo hi')"
    assert exec_code(asyncio_host.port, keys.client_key, threaded).stdout == "hi\n0\n"
    terminal = terminals(ssh_argv(asyncio_host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.send("await asyncio.sleep(0); help(str)\r")
    terminal.expect("Static methods defined here")  # the end of it, written out
    terminal.wait_prompt()
    assert "Help on class str in module builtins" in terminal.transcript
    assert "lines 1-" not in terminal.transcript  # not paged


@pytest.mark.parametrize("green_host", ["gevent", "eventlet"], indirect=True)
def test_sh_in_a_green_host(green_host: Host, keys: Keys) -> None:  # noqa: F811
    """subprocess, as gevent patches it, watches a child from the hub's own loop, which a
    session's OS thread cannot do: sh() failed with gevent's TypeError. gevent's hub also
    reaps every child itself, so there the exit status is lost, and sh() says so."""
    result = exec_code(green_host.port, keys.client_key, "sh('echo out; echo err >&2; exit 3')")
    assert result.returncode == 0 and result.stdout.startswith("out\n")
    assert result.stderr.startswith("err\n") and "Traceback" not in result.stderr
    if result.stdout != "out\n3\n":
        assert "exit status unknown: the host reaped the process itself" in result.stderr
