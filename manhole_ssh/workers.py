"""Whether this process is one of several processes of one service, and which.

A service started by a pre-fork server (gunicorn, uvicorn ``--workers``, Celery's prefork
pool, a ``multiprocessing`` pool) or a reloader (Django's ``runserver``, Werkzeug's
``--debug``) runs the same start-up code in several processes. An ``install()`` with a
fixed port then meets the port held by a sibling or by the parent. That is no reason for
the service to fail: :func:`several_reason` names the case so that ``install()`` can log it
and go on without a manhole, while a lone process whose port is taken still gets an error.

A reloader's parent serves nothing: it only restarts its child when a file changes. A
manhole there shows state that never changes and holds the port the serving child needs,
so :func:`reloader_parent` tells ``install()`` not to listen there.

Everything here reads this process's arguments and environment and the ``/proc`` entries
of its parent (Linux); nothing is changed, and nothing heavy is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "parent_pid_of",
    "process_command_line",
    "reloader_parent",
    "serving_child",
    "several_reason",
]

# The command names of pre-fork servers whose workers run the service's start-up code.
_PRE_FORK_SERVERS = ("gunicorn", "uvicorn", "celery", "hypercorn", "uwsgi", "daphne", "granian")
_TRUE = ("1", "true", "yes", "on")


def process_command_line(pid: int) -> str:
    """The command line of process ``pid`` (empty if it cannot be read)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return ""
    return " ".join(word.decode(errors="replace") for word in words)


def parent_pid_of(pid: int) -> int | None:
    """The parent of process ``pid`` (Linux's ``/proc``; None where it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1])


def reloader_parent(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why this process is a reloader's parent (which serves nothing), or None.

    The rules are the reloaders' own: Django's ``runserver`` restarts itself in a child
    with ``RUN_MAIN=true`` unless ``--noreload`` is given; ``flask run`` does so with
    ``WERKZEUG_RUN_MAIN=true`` when ``--reload`` or debug mode (``--debug``,
    ``FLASK_DEBUG``) is on and ``--no-reload`` is not given.
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    django = argv[1:2] == ["runserver"] and "--noreload" not in argv and _is_django_command(argv)
    if django and environ.get("RUN_MAIN") != "true":
        return "Django's autoreloader, whose child (RUN_MAIN=true) serves"
    if environ.get("WERKZEUG_RUN_MAIN") != "true" and _is_flask_command(argv) and "run" in argv:
        if "--no-reload" in argv:
            return None
        debug = environ.get("FLASK_DEBUG", "").lower() in _TRUE
        if "--debug" in argv:
            debug = True
        elif "--no-debug" in argv:
            debug = False
        if "--reload" in argv or debug:
            return (
                "Werkzeug's reloader (flask run --debug), whose child "
                "(WERKZEUG_RUN_MAIN=true) serves"
            )
    return None


def serving_child(environ: Mapping[str, str] | None = None, pid: int | None = None) -> str | None:
    """What this process is if it is a child started to serve (a reloader's child, a worker
    spawned by ``multiprocessing``), else None."""
    environ = os.environ if environ is None else environ
    if environ.get("RUN_MAIN") == "true":
        return "Django's autoreloader child"
    if environ.get("WERKZEUG_RUN_MAIN") == "true":
        return "Werkzeug's reloader child"
    if "multiprocessing.spawn" in process_command_line(os.getpid() if pid is None else pid):
        return "spawned worker"
    return None


def _is_django_command(argv: Sequence[str]) -> bool:
    """manage.py, django-admin, or a program that has imported Django by now."""
    program = Path(argv[0]).name if argv else ""
    return "django" in sys.modules or program in ("manage.py", "django-admin", "django")


def _is_flask_command(argv: Sequence[str]) -> bool:
    program = Path(argv[0]) if argv else Path()
    return program.name == "flask" or program.parts[-2:] == ("flask", "__main__.py")


def several_reason(
    port_holder: int | None,
    environ: Mapping[str, str] | None = None,
    pid: int | None = None,
) -> str | None:
    """Why this process is one of several processes of one service, or None if nothing says
    so (a lone process).

    :param port_holder: the process whose manhole holds the address asked for, if known
        (from its discovery record).
    """
    environ = os.environ if environ is None else environ
    pid = os.getpid() if pid is None else pid
    parent = parent_pid_of(pid)
    if environ.get("RUN_MAIN") == "true":
        return "a child of Django's autoreloader (RUN_MAIN=true)"
    if environ.get("WERKZEUG_RUN_MAIN") == "true":
        return "a child of Werkzeug's reloader (WERKZEUG_RUN_MAIN=true)"
    if port_holder is not None and parent is not None:
        if port_holder == parent:
            inherited = " (it inherited MANHOLE_SSH=1)" if _enabled(environ) else ""
            return f"a child of process {parent}, whose manhole has it{inherited}"
        if parent_pid_of(port_holder) == parent and _runs_python(parent):
            # (Two programs a shell started are siblings too, but not workers of a server.)
            name = _pre_fork_server(parent) or _short(process_command_line(parent))
            return (
                f"one of several workers of process {parent} ({name}); worker {port_holder} has it"
            )
    server = _pre_fork_server(parent)
    if server is not None:
        return f"a worker of {server} (process {parent})"
    if _is_pool_worker(pid):
        return f"a worker of a multiprocessing pool (process {parent})"
    if _enabled(environ) and parent is not None and _enabled(_environment_of(parent)):
        return f"a child of process {parent}, which set MANHOLE_SSH=1 (inherited)"
    return None


def _enabled(environ: Mapping[str, str]) -> bool:
    return environ.get("MANHOLE_SSH", "").strip().lower() in _TRUE


def _pre_fork_server(pid: int | None) -> str | None:
    """The name of the pre-fork server that process ``pid`` runs, if it is one."""
    if pid is None:
        return None
    words = process_command_line(pid).split()
    for word in words[:8]:  # the program, python [-m] program, or manhole-ssh run [-m] program
        name = Path(word).name
        for server in _PRE_FORK_SERVERS:
            if name == server or name.startswith(f"{server}:") or name == f"{server}.__main__":
                return server
    return None


def _runs_python(pid: int) -> bool:
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return Path(executable).name.startswith(("python", "pypy"))


def _is_pool_worker(pid: int) -> bool:
    """A process started by multiprocessing's spawn or forkserver method."""
    command = process_command_line(pid)
    return "multiprocessing.spawn" in command or "multiprocessing.forkserver" in command


def _environment_of(pid: int) -> dict[str, str]:
    """Process ``pid``'s environment as it started (this user's processes only)."""
    try:
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in entries if entry)
    return {name: value for name, _, value in pairs}


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:59] + "…"
