"""The production debugger: what a session's namespace offers to look inside the host.

One module per job (``tasks``, ``stacks``, ``profiler``, ``heap``, ``watch``, ``logs``);
each registers its helpers with :func:`register`, and :func:`namespace_helpers` gives a
session all of them in one call. Every helper returns a :class:`Report` (readable
``repr``, ``.json()`` for scripts), runs in the session's own thread (so it answers while
the host's main thread or loop is blocked), and costs the host nothing until called.
"""

from __future__ import annotations

from ..green import in_hub
from ..shell import sh
from . import heap, logs, profiler, stacks, tasks, watch
from .registry import Helper, manhole_help, namespace_helpers, register, registered
from .report import Report

register("sh", sh, 'run a shell command here: sh("df -h"); its output and exit status')
register("in_hub", in_hub, "gevent/eventlet hosts: run a function in the host's hub, wait for it")

__all__ = [
    "Helper",
    "Report",
    "heap",
    "logs",
    "manhole_help",
    "namespace_helpers",
    "profiler",
    "register",
    "registered",
    "stacks",
    "tasks",
    "watch",
]
