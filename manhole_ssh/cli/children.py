"""``manhole-ssh run`` reaches the processes its program starts to serve.

A reloader restarts the program in a child (Django's ``runserver`` runs ``python
manage.py runserver`` again, without ``manhole-ssh run``), and uvicorn ``--workers`` and
``multiprocessing`` spawn fresh interpreters: none of them runs the wrapper. So ``run``
passes its options down in the environment (``MANHOLE_SSH=1`` and ``MANHOLE_SSH_*``) and
puts :mod:`manhole_ssh.bootstrap` first on ``PYTHONPATH``: its ``sitecustomize`` installs a
manhole at the start of each such child, then runs the ``sitecustomize`` it shadows, if
any. (opentelemetry-instrument, ddtrace-run and newrelic-admin reach child processes the
same way.) Any other Python program the service starts gets nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["BOOTSTRAP_FOLDER", "install_in_serving_child", "pass_to_children"]

BOOTSTRAP_FOLDER = Path(__file__).with_name("bootstrap")


def pass_to_children(options: Mapping[str, Any]) -> None:
    """In ``manhole-ssh run``'s own process (the wrapper owns it): export ``options`` and
    the bootstrap for the program's children."""
    os.environ["MANHOLE_SSH"] = "1"
    for name, value in options.items():
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, list | tuple):
            text = os.pathsep.join(str(item) for item in value)
        else:
            text = str(value)
        os.environ[f"MANHOLE_SSH_{name.upper()}"] = text
    python_path = os.environ.get("PYTHONPATH")
    folders = [str(BOOTSTRAP_FOLDER), *(python_path.split(os.pathsep) if python_path else [])]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(folders))


def install_in_serving_child() -> None:
    """At the start of a child of ``manhole-ssh run`` (from the bootstrap): install a
    manhole if this process serves (a reloader's child, a spawned worker). Never raises:
    a manhole is never why a service fails."""
    from ..workers import serving_child

    reason = serving_child()
    if reason is None:
        return
    try:
        import manhole_ssh

        from ..config import COMMAND_LINE, environment_options, options_given_through
        from ..errors import ConfigError

        with options_given_through(COMMAND_LINE, {}):
            manhole_ssh.install(**environment_options())
    except ConfigError as error:
        print(f"manhole-ssh: no manhole in {reason} {os.getpid()}: {error}", file=sys.stderr)
    except Exception as error:  # a bug of ours must not stop the service from starting
        print(f"manhole-ssh: no manhole in process {os.getpid()}: {error!r}", file=sys.stderr)
