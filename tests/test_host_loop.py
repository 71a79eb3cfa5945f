"""install() before the service's asyncio loop starts: top-level await finds that loop
when a session starts, the banner says which loop it runs on, and set_loop() names one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from conftest import Keys, Launch, Terminal, exec_code, records_of, ssh_argv

INSTALL_THEN_ASYNCIO_RUN = """
import asyncio, manhole_ssh
manhole_ssh.install(port=0, authorized_keys={keys!r}, host_key={host_key!r})

async def main():
    asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="service-task")
    await asyncio.sleep(3600)

asyncio.run(main())
"""

LOOPS_IN_TWO_THREADS = """
import asyncio, threading, manhole_ssh
loops = [asyncio.new_event_loop() for _ in range(2)]
manhole = manhole_ssh.install(port=0, authorized_keys={keys!r}, host_key={host_key!r},
                              locals={{"loops": loops, "manhole": manhole_ssh}})
threads = [
    threading.Thread(target=loop.run_forever, name=f"loop-{{number}}")
    for number, loop in enumerate(loops)
]
for thread in threads:
    thread.start()
threads[0].join()
"""

RUNS_ON = "import asyncio, threading; await asyncio.sleep(0); threading.current_thread().name"


def write(tmp_path: Path, keys: Keys, program: str) -> Path:
    script = tmp_path / "service.py"
    script.write_text(program.format(keys=str(keys.authorized_keys), host_key=str(keys.host_key)))
    return script


def test_await_finds_the_loop_started_after_install(
    keys: Keys, launch: Launch, tmp_path: Path, terminals: Callable[..., Terminal]
) -> None:
    service = launch([sys.executable, str(write(tmp_path, keys, INSTALL_THEN_ASYNCIO_RUN))], {})
    (record,) = records_of({service.pid})
    assert record.port is not None
    tasks = "import asyncio; await asyncio.sleep(0); [t.get_name() for t in asyncio.all_tasks()]"
    answer = exec_code(record.port, keys.client_key, tasks)
    assert "'service-task'" in answer.stdout, answer.stderr
    terminal = terminals(ssh_argv(record.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.expect("Top-level await runs on the service's asyncio loop (running in thread")
    assert "thread MainThread)." in terminal.text()


def test_set_loop_names_one_of_several(keys: Keys, launch: Launch, tmp_path: Path) -> None:
    service = launch([sys.executable, str(write(tmp_path, keys, LOOPS_IN_TWO_THREADS))], {})
    (record,) = records_of({service.pid})
    assert record.port is not None
    private = exec_code(record.port, keys.client_key, RUNS_ON)
    assert private.stdout.startswith("'manhole-ssh worker"), private.stderr
    named = exec_code(record.port, keys.client_key, "manhole.installed().set_loop(loops[1])")
    assert named.returncode == 0, named.stderr
    assert exec_code(record.port, keys.client_key, RUNS_ON).stdout == "'loop-1'\n"
