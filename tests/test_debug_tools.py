"""The debugging helpers (manhole_ssh/debug/), through a real ssh session against real hosts:
a threaded host, an asyncio host whose loop (its main thread) is blocked while we look."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
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

from manhole_ssh.debug import registered

OpenTerminal = Callable[..., Terminal]


def run(host: Host, keys: Keys, code: str) -> str:
    """Run ``code`` in an exec session; its stdout (failing on a non-zero status)."""
    result = exec_code(host.port, keys.client_key, textwrap.dedent(code))
    assert result.returncode == 0, result.stderr
    return result.stdout


class Background:
    """An exec session left running (a ``watch()`` or ``logs()``), its stdout in a file."""

    def __init__(self, host: Host, keys: Keys, code: str, output: Path) -> None:
        self.output = output
        self._file = output.open("wb")
        self.process = subprocess.Popen(
            ssh_argv(host.port, keys.client_key, "127.0.0.1", code),
            stdout=self._file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_text(self, fragment: str, timeout: float = 15) -> str:
        wait_for(lambda: fragment in self.text(), timeout, f"{fragment!r} in {self.text()!r}")
        return self.text()

    def finish(self, timeout: float = 20) -> str:
        self.process.wait(timeout)
        self._file.close()
        return self.text()


@pytest.fixture
def audited_asyncio_host(keys: Keys, tmp_path: Path) -> Iterator[tuple[Host, Path]]:
    audit_file = tmp_path / "audit.jsonl"
    started = start_host(keys, "--asyncio", "--set", f"audit_file={audit_file}")
    yield started, audit_file
    stop_host(started)


TASK_CHAIN = """\
import asyncio
async def leaf(): await asyncio.sleep(600)
async def middle(): await asyncio.gather(asyncio.create_task(leaf(), name="leaf-task"))
async def parent(): await asyncio.create_task(middle(), name="middle-task")
host_loop.call_soon_threadsafe(lambda: host_loop.create_task(parent(), name="parent-task"))
"""


def test_tasks_where_cancel_while_the_loop_is_blocked(
    audited_asyncio_host: tuple[Host, Path], keys: Keys
) -> None:
    host, audit_file = audited_asyncio_host
    run(host, keys, TASK_CHAIN)
    wait_for(lambda: "leaf-task" in run(host, keys, "tasks()"), 10, "the tasks to start")
    # The host's loop (its main thread) is now stuck until released: every helper answers.
    run(
        host,
        keys,
        "import threading; state['release'] = threading.Event(); "
        "host_loop.call_soon_threadsafe(state['release'].wait)",
    )
    listing = run(host, keys, "tasks()")
    assert "in thread 'MainThread'" in listing
    assert "leaf-task [pending] leaf()" in listing
    assert "awaited by middle-task <- parent-task" in listing
    data = json.loads(run(host, keys, "tasks().json()"))
    (loop,) = data
    by_name = {task["name"]: task for task in loop["tasks"]}
    assert by_name["middle-task"]["awaited_by"] == ["parent-task"]
    assert by_name["middle-task"]["suspended_at"] == "<manhole>:3 in middle"
    stack = run(host, keys, "where('leaf-task', locals=True)")
    assert 'File "<manhole>", line 2, in leaf' in stack
    assert "delay = 600" in stack  # asyncio.sleep's locals
    assert (
        "cancellation of task 'leaf-task' requested"
        in run(host, keys, "cancel('leaf-task', 'enough')").lower()
    )
    assert "leaf-task" in run(host, keys, "tasks()")  # the loop is blocked: not yet
    run(host, keys, "state['release'].set()")
    # Once the loop runs again the whole chain ends (gather propagates the cancellation).
    wait_for(lambda: "leaf-task" not in run(host, keys, "tasks()"), 15, "the cancellation")
    assert "parent-task" not in run(host, keys, "tasks()")
    on_the_loop = exec_code(
        host.port, keys.client_key, "import asyncio; await asyncio.sleep(0); top(1)"
    )
    assert "RuntimeError: top() on the service's event loop would stop" in on_the_loop.stderr
    missing = exec_code(host.port, keys.client_key, "where('no-such-task')")
    assert missing.returncode == 1
    assert "LookupError: no pending task named 'no-such-task'" in missing.stderr
    statements = [event for event in read_events(audit_file) if event["event"] == "statement"]
    assert any(event["code"] == "cancel('leaf-task', 'enough')" for event in statements)


def test_threads_masks_secrets_and_shows_cpu(host: Host, keys: Keys) -> None:
    run(
        host,
        keys,
        """\
        import threading, time
        def handle_login():
            password = "hunter2-secret"
            api_token = "tok-123456"
            headers = {"Authorization": "Bearer sekrit-bearer", "Accept": "text/html"}
            numbers = list(range(1000))
            while time.thread_time() < 0.3:  # some CPU time
                pass
            state["spun"] = True
            time.sleep(60)
        def churn():
            while True:
                sum(i * i for i in range(200))  # a generator's frame ends while we look
        threading.Thread(target=handle_login, name="host-login", daemon=True).start()
        threading.Thread(target=churn, name="host-churn", daemon=True).start()
        """,
    )
    wait_for(lambda: run(host, keys, "state.get('spun')") == "True\n", 15, "the thread to spin")
    listing = run(host, keys, "threads(locals=True)")
    assert "hunter2" not in listing and "tok-123456" not in listing
    assert "sekrit-bearer" not in listing
    assert "headers = {'Accept': 'text/html', 'Authorization': <masked>}" in listing
    assert "password = <masked>" in listing and "api_token = <masked>" in listing
    assert "numbers = [0, 1, 2, 3, 4, ...]" in listing  # cut by reprlib
    for _ in range(3):  # each stack is whole, from the thread's start to where it is
        churning = run(host, keys, "threads(locals=True)").split("Thread 'host-churn'")[1]
        assert "in _bootstrap" in churning.split("\n\n")[0], churning
    data = json.loads(run(host, keys, "threads().json()"))  # (shown as itself, not quoted)
    rows = {row["name"]: row for row in data["threads"]}
    assert rows["host-login"]["cpu_seconds"] >= 0.25
    assert rows["manhole-ssh"]["marks"][0] == "manhole"
    assert any("this session" in row["marks"] for row in rows.values())


def test_top_and_profile_sample_every_thread(host: Host, keys: Keys, tmp_path: Path) -> None:
    run(
        host,
        keys,
        """\
        import threading, time
        def spin_hot():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                pass
        threading.Thread(target=spin_hot, name="host-hot", daemon=True).start()
        """,
    )
    collapsed = tmp_path / "stacks.txt"
    report = run(host, keys, f"profile(1, path={str(collapsed)!r})")
    assert "samples of every thread" in report
    self_time = report.split("By self time", 1)[1].split("By total time", 1)[0]
    assert "spin_hot(<manhole>:2)" in self_time, report
    assert f"Collapsed stacks written to {collapsed}" in report
    assert collapsed.stat().st_mode & 0o777 == 0o600
    lines = collapsed.read_text().splitlines()
    hot = [line for line in lines if line.startswith("host-hot;")]
    assert hot and all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
    assert "manhole-ssh" not in collapsed.read_text()  # the manhole's own threads left out
    data = json.loads(run(host, keys, "print(top(0.5).json())"))
    assert data["samples"] >= 10
    assert data["thread_cpu_seconds"]["host-hot"] > 0


def test_heap_helpers_report_without_keeping_objects_alive(host: Host, keys: Keys) -> None:
    code = """\
    import gc, weakref
    class Payload: pass
    kept = Payload()
    state["payload"] = kept
    watcher = weakref.ref(kept)
    print(heap(5))
    print(referrers(kept))
    baseline = heap_snapshot()
    state["grown"] = [bytearray(1000) for _ in range(2000)]
    print(heap_diff(3))
    print(heap_stop())
    import tracemalloc
    print("tracing after stop:", tracemalloc.is_tracing())
    del state["payload"], kept
    gc.collect()
    print("alive after reports:", watcher() is not None)
    """
    output = run(host, keys, code)
    assert "objects tracked by the garbage collector" in output
    assert "dict: key 'payload'" in output  # who holds it: the host's state dict
    grew = output.split("grew by", 1)[1].splitlines()[1]
    assert "<manhole>:9" in grew and int(grew.split()[0].replace(",", "")) > 2_000_000
    assert "tracemalloc stopped." in output
    assert "tracing after stop: False" in output
    assert "alive after reports: False" in output
    partial = run(host, keys, "print(heap(budget=0).json())")
    assert json.loads(partial)["stopped_early"] is True


def test_watch_reports_a_stalled_loop_and_a_long_gc(
    audited_asyncio_host: tuple[Host, Path], keys: Keys, tmp_path: Path
) -> None:
    host, audit_file = audited_asyncio_host
    before = run(host, keys, "import gc; len(gc.callbacks)")
    watcher = Background(
        host, keys, "watch(loop_ms=100, gc_ms=0, seconds=4)", tmp_path / "watch.txt"
    )
    watcher.wait_text("until Ctrl-C")
    run(host, keys, "import gc; gc.collect(); len(gc.callbacks)")
    run(host, keys, "import time; host_loop.call_soon_threadsafe(lambda: time.sleep(0.6))")
    watcher.wait_text("ran again after")
    output = watcher.finish()
    assert "loop in thread 'MainThread' blocked for" in output
    assert "in <lambda>" in output  # the stack that blocks it
    assert "full garbage collection took" in output
    assert "Stopped watching (time up)" in output
    assert run(host, keys, "import gc; len(gc.callbacks)") == before  # ours removed
    assert "manhole-ssh watchdog" not in run(host, keys, "threads()")
    kinds = {event.get("kind") for event in read_events(audit_file) if event["event"] == "watch"}
    assert {"loop_blocked", "loop_unblocked", "gc"} <= kinds


def test_logs_streams_into_this_session_only(host: Host, keys: Keys, tmp_path: Path) -> None:
    before = run(
        host, keys, "import logging; len(logging.getLogger().handlers), logging.getLogger().level"
    )
    streaming = Background(host, keys, "logs('WARNING', seconds=3)", tmp_path / "logs.txt")
    streaming.wait_text("until Ctrl-C")
    other = run(
        host,
        keys,
        """\
        import logging
        logging.getLogger("app.orders").warning("order %s failed", 17)
        logging.getLogger("app.orders").info("below the level asked for")
        print("other session done")
        """,
    )
    assert other == "other session done\n"  # the record went to the streaming session only
    output = streaming.finish()
    assert "WARNING app.orders" in output and "order 17 failed" in output
    assert "below the level" not in output
    assert "Log stream ended (time up): 1 record(s)." in output
    assert (
        run(
            host,
            keys,
            "import logging; len(logging.getLogger().handlers), logging.getLogger().level",
        )
        == before
    )
    # A client that goes away mid-stream (or mid-watch) leaves nothing behind in the host.
    counts = "import gc, logging; len(gc.callbacks), len(logging.getLogger().handlers)"
    idle = run(host, keys, counts)
    vanishing = [
        Background(host, keys, f"{helper}()", tmp_path / f"{helper}.txt")
        for helper in ("logs", "watch")
    ]
    for background in vanishing:
        background.wait_text("until Ctrl-C")
    assert run(host, keys, counts) != idle
    for background in vanishing:
        background.process.kill()
        background.finish()
    wait_for(lambda: run(host, keys, counts) == idle, 15, "the handler and callback removed")
    noted = exec_code(host.port, keys.client_key, "logs('DEBUG', seconds=0)")
    assert "drops records below WARNING" in noted.stderr  # (stdout: the records only)


def test_manhole_help_lists_every_helper_and_reports_print_in_the_repl(
    terminals: OpenTerminal, host: Host, keys: Keys
) -> None:
    listing = run(host, keys, "manhole_help()")
    for helper in registered():
        assert f"  {helper.name}()" in listing and helper.summary in listing
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"), rows=50)
    terminal.expect("manhole_help() lists every debugging helper")
    terminal.wait_prompt()
    terminal.evaluate("tasks()", "No asyncio loop of the host is running")
    terminal.send("top(60)\r")
    terminal.expect("Ctrl-C stops it early")
    terminal.send("\x03")  # Ctrl-C ends the sampling early; what was seen is shown
    terminal.expect("(stopped by Ctrl-C)")
    terminal.wait_prompt()
    for helper, started, stopped in (
        ("watch()", "Watching (no event loop runs)", "Stopped watching (Ctrl-C)"),
        ("logs()", "Streaming 'root'", "Log stream ended (Ctrl-C)"),
    ):
        terminal.send(helper + "\r")
        terminal.expect(started)
        terminal.send("\x03")
        terminal.expect(stopped)
        terminal.wait_prompt()
    terminal.evaluate(
        "import gc, logging; len(gc.callbacks), len(logging.getLogger().handlers)", "(0, 0)"
    )
