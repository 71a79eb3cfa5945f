"""Real servers whose start-up code runs in several processes (pre-fork workers, a
reloader's parent and child): a manhole installed the natural way never takes the service
down, lands in a process that serves, and says why a process has none."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import RECIPES, Keys, Launch, exec_code, records_of, wait_for

from manhole_ssh.workers import parent_pid_of, reloader_parent

pytestmark = pytest.mark.slow  # real servers and other interpreters: see make test-fast


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(port: int, timeout: float = 30) -> str:
    """The body served on ``port``, waiting (up to ``timeout``) for the server to answer."""
    body: list[str] = []

    def answered() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                body.append(response.read().decode())
                return True
        except OSError:
            return False

    wait_for(answered, timeout, f"an HTTP answer on port {port}")
    return body[0]


def install_line(keys: Keys, options: str) -> str:
    return (
        f"manhole_ssh.install({options}, authorized_keys={str(keys.authorized_keys)!r}, "
        f"host_key={str(keys.host_key)!r})"
    )


def stderr_of(process: subprocess.Popen[str], until: str, timeout: float = 30) -> str:
    """What the process wrote to stderr, read until ``until`` shows (or it exits)."""
    assert process.stderr is not None
    seen: list[str] = []

    def shown() -> bool:
        line = process.stderr.readline()  # type: ignore[union-attr]
        seen.append(line)
        return until in line or not line

    wait_for(shown, timeout, repr(until))
    return "".join(seen)


def test_gunicorn_workers_with_a_fixed_port_keep_serving(
    keys: Keys, default_keys: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    """install(port=P) in wsgi.py (docs/recipes/wsgi_app.py) under gunicorn --workers 2: one
    worker gets the manhole, the other logs why it has none and what to do, and the site
    serves."""
    port, http_port = free_port(), free_port()
    shutil.copy(RECIPES / "wsgi_app.py", tmp_path)
    gunicorn = [sys.executable, "-m", "gunicorn", "--workers", "2"]
    env = {**default_keys, "MANHOLE_PORT": str(port)}
    server = launch([*gunicorn, "--bind", f"127.0.0.1:{http_port}", "wsgi_app:app"], env, tmp_path)
    log = stderr_of(server, "is taken")
    assert "and this process is one of several workers of process" in log
    assert "give port=0 or a socket path with {pid}" in log
    assert http_get(http_port).isdigit()
    (record,) = records_of()
    assert parent_pid_of(record.pid) == server.pid
    assert exec_code(port, keys.client_key, "import os; os.getpid()").stdout == f"{record.pid}\n"
    assert server.poll() is None


def test_uvicorn_workers_with_a_fixed_port_keep_serving(
    keys: Keys, default_keys: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    """uvicorn --workers 2 (spawned workers), install() in the lifespan start-up
    (docs/recipes/asgi_app.py)."""
    pytest.importorskip("uvicorn")
    port, http_port = free_port(), free_port()
    shutil.copy(RECIPES / "asgi_app.py", tmp_path)
    uvicorn = [sys.executable, "-m", "uvicorn", "--workers", "2", "--port", str(http_port)]
    server = launch(
        [*uvicorn, "asgi_app:app"], {**default_keys, "MANHOLE_PORT": str(port)}, tmp_path
    )
    log = stderr_of(server, "is taken")
    assert "one of several workers of process" in log
    assert http_get(http_port).isdigit()
    (record,) = records_of()
    code = "import asyncio; (await asyncio.sleep(0, 'on the worker loop'), os.getpid())[1]"
    answer = exec_code(port, keys.client_key, f"import os; {code}")
    assert answer.stdout == f"{record.pid}\n", answer.stderr
    assert server.poll() is None


# docs/recipes/django without its install(): for `manhole-ssh run manage.py runserver`.
PLAIN_DJANGO_APPS = """
from django.apps import AppConfig

class ManholeApp(AppConfig):
    name = "djapp"
"""


def write_files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_django_runserver_manhole_is_in_the_serving_child(
    keys: Keys, default_keys: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    """runserver with its autoreloader: install(port=P) in AppConfig.ready()
    (docs/recipes/django), and `manhole-ssh run manage.py runserver`, each listen in the
    child that serves (RUN_MAIN=true), not in the reloader parent; the site serves."""
    pytest.importorskip("django")
    port, http_ports = free_port(), (free_port(), free_port())
    shutil.copytree(RECIPES / "django", tmp_path / "in_code")
    shutil.copytree(RECIPES / "django", tmp_path / "wrapped")
    write_files(tmp_path / "wrapped", {"djapp/apps.py": PLAIN_DJANGO_APPS})
    runserver = ["manage.py", "runserver", "--skip-checks"]
    in_code = launch(
        [sys.executable, *runserver, f"127.0.0.1:{http_ports[0]}"],
        {**default_keys, "MANHOLE_PORT": str(port)},
        tmp_path / "in_code",
    )
    wrapped = launch(
        [sys.executable, "-m", "manhole_ssh", "run", *runserver, f"127.0.0.1:{http_ports[1]}"],
        {},
        tmp_path / "wrapped",
    )
    served_by = {int(http_get(http_port)) for http_port in http_ports}
    records = records_of(count=2, timeout=30)
    assert {record.pid for record in records} == served_by
    assert {parent_pid_of(pid) for pid in served_by} == {in_code.pid, wrapped.pid}
    assert port in {record.port for record in records}
    for record in records:
        assert record.port is not None
        answer = exec_code(record.port, keys.client_key, "import os; os.environ['RUN_MAIN']")
        assert answer.stdout == "'true'\n", answer.stderr


# docs/recipes/flask_app.py without its install(): for `manhole-ssh run -m flask`.
PLAIN_FLASK_APP = """
import os
from flask import Flask

app = Flask(__name__)

@app.route("/")
def pid():
    return str(os.getpid())
"""


def test_flask_debug_manhole_is_in_the_serving_child(
    keys: Keys, default_keys: dict[str, str], launch: Launch, tmp_path: Path
) -> None:
    """flask run --debug: a module-level install(port=P) (docs/recipes/flask_app.py), and
    `manhole-ssh run -m flask`, each put the manhole in Werkzeug's child that serves, and
    requests succeed."""
    pytest.importorskip("flask")
    port = free_port()
    shutil.copy(RECIPES / "flask_app.py", tmp_path)
    (tmp_path / "plain_app.py").write_text(PLAIN_FLASK_APP)
    http_ports = free_port(), free_port()

    def flask(app: str, http_port: int) -> list[str]:
        return ["-m", "flask", "--app", app, "run", "--debug", "--port", str(http_port)]

    in_code = launch(
        [sys.executable, *flask("flask_app", http_ports[0])],
        {**default_keys, "MANHOLE_PORT": str(port)},
        tmp_path,
    )
    wrapped = launch(
        [sys.executable, "-m", "manhole_ssh", "run", *flask("plain_app", http_ports[1])],
        {},
        tmp_path,
    )
    served_by = {int(http_get(http_port)) for http_port in http_ports}
    records = records_of(count=2, timeout=30)
    assert {record.pid for record in records} == served_by
    assert {parent_pid_of(pid) for pid in served_by} == {in_code.pid, wrapped.pid}
    for record in records:
        assert record.port is not None
        code = "import os; os.environ['WERKZEUG_RUN_MAIN']"
        answer = exec_code(record.port, keys.client_key, code)
        assert answer.stdout == "'true'\n", answer.stderr
    assert {record.port for record in records} - {port}  # the wrapped one took MANHOLE_SSH_PORT=0


CELERY_APP = """
import os, manhole_ssh
from celery import Celery
from celery.signals import worker_init, worker_process_init

app = Celery("celery_app", broker="memory://")

def install(**kwargs):
    {install}

worker_init.connect(install)
worker_process_init.connect(install)
"""


def test_celery_solo_installing_twice_names_the_real_listener(
    keys: Keys, launch: Launch, tmp_path: Path
) -> None:
    """Celery's solo pool fires worker_init and worker_process_init in one process: the
    second install() says where the first listens (a Unix socket, not "port 0"), and the
    worker starts all the same."""
    pytest.importorskip("celery")
    socket_path = tmp_path / "celery.sock"
    (tmp_path / "celery_app.py").write_text(
        CELERY_APP.format(install=install_line(keys, f"socket_path={str(socket_path)!r}"))
    )
    celery = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "solo"]
    worker = launch([*celery, "--loglevel", "INFO", "--without-mingle"], {}, tmp_path)
    log = stderr_of(worker, "ready.", timeout=40)
    assert f"already installed in this process (it listens on socket {socket_path})" in log
    assert "port 0" not in log
    (record,) = records_of()
    assert (record.pid, record.socket_path, record.port) == (worker.pid, str(socket_path), None)
    assert worker.poll() is None


def test_a_lone_process_is_told_which_manhole_holds_its_port(
    keys: Keys, launch: Launch, tmp_path: Path
) -> None:
    """A lone process whose port another manhole holds still gets the error (nothing says
    it is one of several), naming that manhole's process."""
    port = free_port()
    script = tmp_path / "lone.py"
    script.write_text(
        "import sys, time, manhole_ssh\n"
        "try:\n"
        f"    {install_line(keys, f'port={port}')}\n"
        "except manhole_ssh.ConfigError as error:\n"
        "    print(error, flush=True)\n"
        "print('installed', flush=True)\n"
        "time.sleep(60)\n"
    )
    # Two programs a shell started: the second is not a worker of anything.
    shell = ["sh", "-c", f"{sys.executable} {script}; exit"]
    first = launch(shell, {})
    assert first.stdout is not None and first.stdout.readline() == "installed\n"
    second = launch(shell, {})
    assert second.stdout is not None
    error = second.stdout.readline()
    assert error.startswith(f"port {port} on 127.0.0.1 is already in use"), error
    assert "give another port, or port=0 for any free one" in error
    assert "It is the manhole of process " in error and "lone.py" in error


SPAWNING_PROGRAM = """
import multiprocessing, os, subprocess, sys, time

if __name__ == "__main__":
    plain = "import sitecustomize, manhole_ssh; print(sitecustomize.MARK, manhole_ssh.installed())"
    print(subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True).stdout,
          end="", flush=True)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(pool.apply(os.getpid), flush=True)
        time.sleep(60)
"""


def test_manhole_ssh_run_reaches_spawned_workers_only(
    keys: Keys, launch: Launch, tmp_path: Path
) -> None:
    """Under `manhole-ssh run`, a worker spawned by multiprocessing gets a manhole of its
    own; a plain Python child gets none, and the sitecustomize it had still runs."""
    (tmp_path / "spawning.py").write_text(SPAWNING_PROGRAM)
    user_site = tmp_path / "user_site"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text("MARK = 'user sitecustomize'\n")
    program = launch(
        [sys.executable, "-m", "manhole_ssh", "run", str(tmp_path / "spawning.py")],
        {"PYTHONPATH": str(user_site)},
    )
    assert program.stdout is not None
    assert program.stdout.readline() == "user sitecustomize None\n"
    worker = int(program.stdout.readline())
    records = records_of(count=2)
    assert {record.pid for record in records} == {program.pid, worker}
    (port,) = [record.port for record in records if record.pid == worker]
    assert port is not None
    answer = exec_code(port, keys.client_key, "import os; os.getpid()")
    assert answer.stdout == f"{worker}\n", answer.stderr


@pytest.mark.parametrize(
    ("argv", "environ", "parent"),
    [
        (["manage.py", "runserver"], {}, "Django"),
        (["manage.py", "runserver", "--noreload"], {}, None),
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, None),  # the child that serves
        (["manage.py", "migrate"], {}, None),
        (["/venv/bin/flask", "--app", "app", "run", "--debug"], {}, "Werkzeug"),
        (["flask", "run"], {"FLASK_DEBUG": "1"}, "Werkzeug"),
        (["flask", "run", "--reload"], {}, "Werkzeug"),
        (["flask", "run"], {}, None),
        (["flask", "run", "--debug", "--no-reload"], {}, None),
        (["flask", "run", "--debug"], {"WERKZEUG_RUN_MAIN": "true"}, None),
        (["app.py", "run", "--debug"], {}, None),  # not flask's command
    ],
)
def test_which_processes_are_a_reloaders_parent(
    argv: list[str], environ: dict[str, str], parent: str | None
) -> None:
    """The reloaders' own rules: the parent restarts the child, and serves nothing."""
    reason = reloader_parent(argv, environ)
    assert (reason.split("'")[0] if reason else None) == parent


def test_a_forked_child_on_the_parents_fixed_port_says_why(keys: Keys, tmp_path: Path) -> None:
    """on_fork="restart" with a fixed port: the child cannot have the parent's port; it
    says so (the case and the fix) and runs on."""
    port = free_port()
    options = f"port={port}, on_fork='restart'"
    script = tmp_path / "forks.py"
    script.write_text(
        "import os, manhole_ssh\n"
        f"{install_line(keys, options)}\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    print('child has', manhole_ssh.installed(), flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(child, 0)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.stdout == "child has None\n", result.stderr
    assert f"port {port} is taken, and this process is a child of process" in result.stderr
    assert "whose manhole has it; to have one in every process, give port=0" in result.stderr
