"""Real programs with a manhole: zero-code enable through the environment, `manhole-ssh
run`, a gunicorn pre-fork server, a program whose main thread is stuck for good."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Keys, Launch, exec_code, records_of, wait_for

pytestmark = pytest.mark.slow  # real servers and other interpreters: see make test-fast


def test_zero_code_enable_with_manhole_ssh_auto(keys: Keys, launch: Launch, tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(
        "import sys, time\n"
        "import manhole_ssh.auto\n"
        "print('manhole' if manhole_ssh.auto.manhole else 'none',\n"
        "      'asyncssh' in sys.modules, flush=True)\n"
        "VALUE = 41\n"
        "time.sleep(60)\n"
    )
    enabled = launch([sys.executable, str(script)], {"MANHOLE_SSH": "1"})
    assert enabled.stdout is not None
    assert enabled.stdout.readline() == "manhole False\n"  # nothing heavy until someone comes
    (record,) = records_of({enabled.pid})
    assert record.port is not None
    result = exec_code(record.port, keys.client_key, "import __main__; __main__.VALUE + 1")
    assert result.stdout == "42\n", result.stderr

    disabled = launch([sys.executable, str(script)], {})
    assert disabled.stdout is not None
    assert disabled.stdout.readline() == "none False\n"

    mistyped = launch([sys.executable, str(script)], {"MANHOLE_SSH": "1", "MANHOLE_SSH_PROT": "0"})
    assert mistyped.stdout is not None and mistyped.stderr is not None
    assert mistyped.stdout.readline() == "none False\n"  # the program runs on without one
    assert "MANHOLE_SSH_PROT is not an option of manhole-ssh" in mistyped.stderr.readline()


def test_manhole_ssh_run_a_script_and_a_module(keys: Keys, launch: Launch, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import sys, time\nprint(__name__, sys.argv[1:], flush=True)\nANSWER = 42\ntime.sleep(60)\n"
    )
    run = [sys.executable, "-m", "manhole_ssh", "run"]
    as_script = launch([*run, str(script), "--flag", "x"], {})
    as_module = launch([*run, "-m", "app", "y"], {}, cwd=tmp_path)
    for process, argv in ((as_script, ["--flag", "x"]), (as_module, ["y"])):
        assert process.stdout is not None
        assert process.stdout.readline() == f"__main__ {argv}\n"
        (record,) = records_of({process.pid})
        assert record.port is not None
        answer = exec_code(record.port, keys.client_key, "import __main__; __main__.ANSWER")
        assert answer.stdout == "42\n", answer.stderr


GUNICORN_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""

# A worker has monkey-patched (gevent, eventlet) once gunicorn calls post_worker_init.
GUNICORN_CONFIG = """
import os, pathlib

def post_worker_init(worker):
    pathlib.Path("ready-%d" % os.getpid()).touch()
"""


def gunicorn_worker_class_available(worker_class: str) -> bool:
    """gunicorn's gevent worker needs gevent; its eventlet worker (gunicorn.workers.geventlet)
    is gone from newer gunicorn releases."""
    modules = {
        "sync": [],
        "gevent": ["gevent"],
        "eventlet": ["eventlet", "gunicorn.workers.geventlet"],
    }
    return importlib.util.find_spec("gunicorn") is not None and all(
        importlib.util.find_spec(module) is not None for module in modules[worker_class]
    )


@pytest.mark.parametrize("worker_class", ["sync", "gevent", "eventlet"])
def test_gunicorn_workers_each_have_a_manhole(
    keys: Keys, launch: Launch, tmp_path: Path, worker_class: str
) -> None:
    """`manhole-ssh run -m gunicorn`: the arbiter gets a manhole, and on_fork=restart gives
    every forked worker one of its own, a respawned one too; `manhole-ssh list` shows all.
    gevent and eventlet workers monkey-patch after the fork: their manholes still run on
    real threads."""
    if not gunicorn_worker_class_available(worker_class):
        pytest.skip(f"gunicorn's {worker_class} worker is not installed")
    (tmp_path / "wsgi_app.py").write_text(GUNICORN_APP)
    (tmp_path / "gunicorn_conf.py").write_text(GUNICORN_CONFIG)

    def wait_until_booted(pid: int) -> None:
        wait_for((tmp_path / f"ready-{pid}").exists, 30, f"worker {pid} to boot")

    arbiter = launch(
        [
            sys.executable,
            "-m",
            "manhole_ssh",
            "run",
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--worker-class",
            worker_class,
            "--config",
            "gunicorn_conf.py",
            "--bind",
            "127.0.0.1:0",
            "wsgi_app:app",
        ],
        {"MANHOLE_SSH_ON_FORK": "restart"},
        cwd=tmp_path,
    )
    records = records_of(count=3, timeout=30)
    by_pid = {record.pid: record for record in records}
    assert arbiter.pid in by_pid
    workers = set(by_pid) - {arbiter.pid}
    assert len(workers) == 2
    listed = subprocess.run(
        [sys.executable, "-m", "manhole_ssh", "list"], capture_output=True, text=True, timeout=30
    ).stdout
    assert all(str(pid) in listed for pid in by_pid)
    green = None if worker_class == "sync" else worker_class
    code = (
        "import os; from manhole_ssh.green.originals import green_library; "
        "(os.getpid(), os.getppid(), type(__import__('__main__')).__name__, green_library())"
    )
    for pid in workers:
        wait_until_booted(pid)
        port = by_pid[pid].port
        assert port is not None and port != by_pid[arbiter.pid].port
        result = exec_code(port, keys.client_key, code)
        assert result.stdout == f"({pid}, {arbiter.pid}, 'module', {green!r})\n", result.stderr
    # The debugging helpers in a worker (a green one: real threads, real sleeps and queues).
    looked = exec_code(
        by_pid[min(workers)].port, keys.client_key, "print(threads(locals=True)); top(0.3)"
    )
    assert "Thread 'MainThread'" in looked.stdout, looked.stderr
    assert "samples of every thread" in looked.stdout, looked.stderr
    killed = min(workers)
    os.kill(killed, signal.SIGKILL)
    (respawned,) = records_of(pids=None, count=3, timeout=30, exclude={killed, *by_pid})
    assert respawned.port is not None
    wait_until_booted(respawned.pid)
    result = exec_code(respawned.port, keys.client_key, code)
    assert result.stdout == f"({respawned.pid}, {arbiter.pid}, 'module', {green!r})\n", (
        result.stderr
    )


STUCK_PROGRAM = """
import threading, time, manhole_ssh
manhole_ssh.install(port=0, authorized_keys={keys!r}, host_key={host_key!r})
print("ready", flush=True)

def wait_for_a_lock_nobody_releases():
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()

wait_for_a_lock_nobody_releases()
"""

BLOCKED_LOOP_PROGRAM = """
import asyncio, time, manhole_ssh

async def main():
    manhole_ssh.install(port=0, authorized_keys={keys!r}, host_key={host_key!r})
    print("ready", flush=True)
    await asyncio.sleep(0.1)
    block_the_loop_for_good()

def block_the_loop_for_good():
    while True:
        time.sleep(1)

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("program", "where"),
    [(STUCK_PROGRAM, "wait_for_a_lock_nobody_releases"), (BLOCKED_LOOP_PROGRAM, "block_the_loop")],
)
def test_a_stuck_main_thread_still_answers(
    keys: Keys, launch: Launch, tmp_path: Path, program: str, where: str
) -> None:
    """The manhole runs on its own thread and loop: it answers while the main thread (or
    the host's asyncio loop) is stuck, and threads(), top() and tasks() show where."""
    script = tmp_path / "stuck.py"
    script.write_text(
        textwrap.dedent(program).format(keys=str(keys.authorized_keys), host_key=str(keys.host_key))
    )
    process = launch([sys.executable, str(script)], {})
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    (record,) = records_of({process.pid})
    assert record.port is not None
    result = exec_code(record.port, keys.client_key, "threads()")
    assert result.returncode == 0, result.stderr
    main_thread = result.stdout.split("MainThread", 1)[1].split("\n\n", 1)[0]
    assert where in main_thread, result.stdout
    profile = exec_code(record.port, keys.client_key, "top(0.5)").stdout
    assert where in profile.split("By self time", 1)[1].split("By total", 1)[0], profile
    if program is BLOCKED_LOOP_PROGRAM:  # the task blocking the loop: running
        listing = exec_code(record.port, keys.client_key, "tasks()").stdout
        assert "Task-1 [running] main()" in listing, listing
