"""gevent and eventlet hosts: the manhole answers while the host's hub is stuck.

The host (tests/green_host.py) monkey-patches, installs a manhole, and on request stalls its
hub with CPU work that never yields. Everything here happens during that stall, through the
real ssh client, and checks that the stall was still on when the answer came.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Host, Keys, Terminal, exec_code, ssh_argv, start_host, stop_host, wait_for

pytestmark = pytest.mark.slow  # real servers and other interpreters: see make test-fast

GREEN_HOST = Path(__file__).with_name("green_host.py")
STALL_SECONDS = 30  # the longest the hub is stuck; each test ends it as soon as it is done

LIBRARIES = [
    pytest.param((library, order), id=f"{library}-{order}")
    for library in ("gevent", "eventlet")
    for order in ("patch-first", "import-first")
]


@pytest.fixture
def green_host(request: pytest.FixtureRequest, keys: Keys) -> Iterator[Host]:
    """The host of the test's ``library`` parameter: (name, patch order), or a name alone
    (patched before ``import manhole_ssh``)."""
    library, order = (
        request.param if isinstance(request.param, tuple) else (request.param, "patch-first")
    )
    if importlib.util.find_spec(library) is None:  # (importing eventlet here warns at each fork)
        pytest.skip(f"{library} is not installed")
    started = start_host(keys, library, order, program=GREEN_HOST)
    yield started
    stop_host(started)


def run(host: Host, keys: Keys, code: str) -> str:
    """Run code in the host through ``ssh HOST CODE``; its output (it must succeed)."""
    result = exec_code(host.port, keys.client_key, code)
    assert result.returncode == 0, result.stderr
    return result.stdout


def stall_the_hub(host: Host, keys: Keys) -> None:
    run(host, keys, f"state['stall'] = {STALL_SECONDS}")
    wait_for(lambda: "stalling" in host.read_output(0.05), 15, "the hub to stall")


def end_the_stall(host: Host, keys: Keys) -> None:
    run(host, keys, "state['stop'] = True")
    wait_for(lambda: "stall over" in host.read_output(0.05), 15, "the stall to end")


@pytest.mark.parametrize("green_host", LIBRARIES, indirect=True)
def test_login_exec_ctrl_c_and_threads_while_the_hub_is_stuck(
    green_host: Host, keys: Keys, terminals: Callable[..., Terminal]
) -> None:
    stall_the_hub(green_host, keys)
    terminal = terminals(ssh_argv(green_host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.evaluate("state['stalling']", "True")
    terminal.send("while True: pass\r")
    terminal.expect("while True")
    terminal.send("\x03")
    terminal.expect("KeyboardInterrupt")
    terminal.wait_prompt()
    terminal.send("in_hub(sleep, 0)\r")  # waits: the hub is stuck
    terminal.expect("in_hub(sleep, 0)")
    terminal.send("\x03")  # (on a loaded machine the wait may miss the grace: then abandoned)
    terminal.wait_screen(lambda text: text.count("KeyboardInterrupt") >= 2, "a second interrupt")
    terminal.wait_prompt()
    listing = run(green_host, keys, "threads()")
    assert run(green_host, keys, "state['stalling'], 6 * 7") == "(True, 42)\n"
    end_the_stall(green_host, keys)
    main_thread = listing.split("Thread 'MainThread'", 1)[1].split("\n\n", 1)[0]
    assert "spin_in_the_hub" in main_thread, listing  # the stuck greenlet, where it is
    assert "[manhole, this session" in listing, listing
    idle = listing.split("200 greenlets (", 1)[1].split("\n\n", 1)[0]  # counted once
    assert "idle_greenlet" in idle, listing


@pytest.mark.parametrize("green_host", ["gevent", "eventlet"], indirect=True)
def test_in_hub_runs_in_the_hub_and_waits_for_it(green_host: Host, keys: Keys) -> None:
    code = "in_hub(where) == hub_thread != where(), in_hub(lambda: sleep(0.1) or 'slept')"
    assert run(green_host, keys, code) == "(True, 'slept')\n"
    failed = exec_code(green_host.port, keys.client_key, "in_hub(int, 'x')")
    assert failed.returncode == 1
    assert "ValueError: invalid literal for int()" in failed.stderr
