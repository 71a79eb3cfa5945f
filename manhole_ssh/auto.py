"""``import manhole_ssh.auto``: install a manhole if the environment asks for one.

With ``MANHOLE_SSH=1`` (and options as ``MANHOLE_SSH_<OPTION>`` variables, see the
README), importing this module calls :func:`manhole_ssh.install`; without it, importing
does nothing. A program can so carry the import always and be opened only where an
operator sets the variable. A configuration error is printed to stderr and the program
goes on without a manhole, and so does any other error (``Exception``): a debugging aid
must not stop the service it is meant to help.
"""

from __future__ import annotations

import sys

import manhole_ssh

from .config import (
    ENVIRONMENT,
    ConfigError,
    environment_enabled,
    environment_options,
    options_given_through,
)
from .manhole import Manhole, installed

__all__ = ["manhole"]


def _install_from_environment() -> Manhole | None:
    running = installed()
    if running is not None:
        return running  # `manhole-ssh run` installed it already
    try:
        if not environment_enabled():
            return None
        with options_given_through(ENVIRONMENT, {}):
            return manhole_ssh.install(**environment_options())
    except ConfigError as error:
        print(f"manhole-ssh: no manhole in this process: {error}", file=sys.stderr, flush=True)
        return None
    except Exception as error:  # a bug of ours, or the host's: still no reason to stop it
        print(
            f"manhole-ssh: no manhole in this process: unexpected {error!r} (please report it)",
            file=sys.stderr,
            flush=True,
        )
        return None


manhole: Manhole | None = _install_from_environment()
"""The manhole the environment asked for, or ``None``."""
