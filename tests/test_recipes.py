"""The recipes of docs/recipes/ not run elsewhere, started as the pages show them and
entered with ssh: an asyncio service, a threaded server, Flask without its reloader, a
Celery prefork pool, and the systemd unit's command as a plain process (tests/test_workers.py
and tests/test_integrations.py run the other recipes)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RECIPES, Keys, Launch, exec_code, records_of, ssh_argv, wait_for
from test_workers import free_port, http_get


@pytest.mark.parametrize(
    ("recipe", "code", "expected"),
    [
        ("asyncio_service.py", "await asyncio.sleep(0.3, state['ticks'] > 1)", "True"),
        ("threaded_server.py", "type(server).__name__", "'ThreadingTCPServer'"),
    ],
)
def test_plain_recipes(
    keys: Keys,
    default_keys: dict[str, str],
    launch: Launch,
    recipe: str,
    code: str,
    expected: str,
) -> None:
    service = launch([sys.executable, str(RECIPES / recipe)], default_keys)
    (record,) = records_of({service.pid})
    assert record.port is not None
    answer = exec_code(record.port, keys.client_key, f"import asyncio; {code}")
    assert answer.stdout == f"{expected}\n", answer.stderr


def test_flask_without_the_reloader(
    keys: Keys, default_keys: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    pytest.importorskip("flask")
    shutil.copy(RECIPES / "flask_app.py", tmp_path)
    port, http_port = free_port(), free_port()
    flask = [sys.executable, "-m", "flask", "--app", "flask_app", "run", "--port", str(http_port)]
    server = launch(flask, {**default_keys, "MANHOLE_PORT": str(port)}, tmp_path)
    assert http_get(http_port) == str(server.pid)
    answer = exec_code(port, keys.client_key, "import os; os.getpid()")
    assert answer.stdout == f"{server.pid}\n", answer.stderr


def test_celery_prefork(
    keys: Keys, default_keys: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    """The recipe's worker_process_init install(): a manhole in the pool process, on the
    socket its pid names, and none in the main worker process."""
    pytest.importorskip("celery")
    shutil.copy(RECIPES / "celery_app.py", tmp_path)
    sockets = tmp_path / "sockets"
    sockets.mkdir(mode=0o700)
    celery = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork"]
    worker = launch(
        [*celery, "--concurrency", "1", "--without-mingle", "--without-gossip"],
        {**default_keys, "MANHOLE_SOCKETS": str(sockets)},
        tmp_path,
    )
    (record,) = records_of(timeout=40)
    assert record.pid != worker.pid
    assert record.socket_path == str(sockets / f"manhole-{record.pid}.sock")
    proxy = f"ProxyCommand={sys.executable} -m manhole_ssh proxy {record.socket_path}"
    answer = subprocess.run(
        ssh_argv(
            22,
            keys.client_key,
            "-o",
            proxy,  # (port unused)
            "manhole",
            "import os; os.getppid()",
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert answer.stdout == f"{worker.pid}\n", answer.stderr


def test_systemd_unit_as_a_plain_process(
    keys: Keys, default_keys: dict[str, str], tmp_path: Path
) -> None:
    """manhole-app.service's ExecStart and Environment=, with %t a temporary folder: the
    manhole is on the socket named by {pid}, ssh gets in through `manhole-ssh proxy`, and
    after SIGTERM nothing is left in the runtime directory."""
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(RECIPES / "manhole-app.service")
    service = unit["Service"]
    runtime_root = tmp_path / "run"
    runtime = runtime_root / service["RuntimeDirectory"]
    runtime.mkdir(parents=True, mode=int(service["RuntimeDirectoryMode"], 8))

    def systemd(text: str) -> str:
        return text.replace("%t", str(runtime_root))

    argv = shlex.split(systemd(service["ExecStart"]))
    assert argv[0] == "/opt/app/venv/bin/manhole-ssh" and argv[-1] == "/opt/app/systemd_service.py"
    argv = [sys.executable, "-m", "manhole_ssh", *argv[1:-1], str(RECIPES / "systemd_service.py")]
    name, value = systemd(service["Environment"]).split("=", 1)
    process = subprocess.Popen(
        argv,
        env={**os.environ, **default_keys, name: value},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        socket_path = runtime / f"manhole-{process.pid}.sock"
        wait_for(socket_path.exists, 20, f"the socket {socket_path}")
        proxy = f"ProxyCommand={sys.executable} -m manhole_ssh proxy {socket_path}"
        answer = subprocess.run(
            ssh_argv(
                22,
                keys.client_key,
                "-o",
                proxy,  # (port unused)
                "manhole",
                "import os; os.getpid()",
            ),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert answer.stdout == f"{process.pid}\n", answer.stderr
        assert {path.name for path in runtime.iterdir()} >= {socket_path.name, "manhole-ssh"}
        process.send_signal(getattr(signal, service["KillSignal"]))
        assert process.wait(timeout=20) == 0, process.communicate()[1]
    finally:
        process.kill()
        process.communicate()
    left = [path for path in runtime.rglob("*")]
    assert left in ([], [runtime / "manhole-ssh"]), left  # the records' folder may stay, empty
