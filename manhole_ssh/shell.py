"""``sh()``: a command run from a session, with its output and exit status in the session.

A child process started the plain way (``os.system``, ``subprocess.run``) inherits the
host's file descriptors 0, 1 and 2: its output goes wherever the service's goes (its
terminal, its log), never to the session, since a session's streams are Python objects, not
descriptors. ``sh`` gives the child pipes instead and copies what comes out of them to the
session as it comes.
"""

from __future__ import annotations

import codecs
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from . import originals
from .streams import on_a_host_loop

__all__ = ["sh"]

# How often the copying loop returns to Python code, where Ctrl-C (an asynchronous
# KeyboardInterrupt in the worker thread) is raised.
_POLL_SLICE = 0.05
# After Ctrl-C, how long the child's process group gets to end on SIGTERM before SIGKILL:
# well within the executor's grace, so that the statement ends here rather than being
# left behind.
_TERMINATE_GRACE = 0.2


def sh(command: str | Sequence[str]) -> int:
    """Run ``command`` with its output and errors streamed to this session; return its exit
    status (negative: killed by that signal), as ``subprocess.call`` does.

    :param command: a shell command line (run by ``/bin/sh``), or a list of arguments (run
        without a shell).

    The command reads nothing (its stdin is ``/dev/null``) and runs in a process group of
    its own; Ctrl-C ends it, and every process of that group, then raises
    ``KeyboardInterrupt``. It runs as the host's user, in the host's working directory and
    environment. Output from processes it leaves running in the background is not waited
    for once it has exited.

    :raises RuntimeError: on the service's event loop (in a statement that awaits), which
        would stop until the command ended: ``await asyncio.to_thread(sh, command)`` there.
    """
    if on_a_host_loop():
        raise RuntimeError(
            "sh() on the service's event loop would stop the loop until the command ends "
            "(this statement awaits, so it runs there): use await asyncio.to_thread(sh, …), "
            "or a statement without await"
        )
    # The real Popen, selector and sleep (see originals.py): gevent's wait for a child only
    # in the hub's thread, and this runs in the session's own OS thread.
    popen: type[subprocess.Popen[bytes]] = originals.original("subprocess", "Popen")
    with popen(
        command,
        shell=isinstance(command, str),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            _copy_output(process)
            return process.wait()
        except BaseException:
            _end_process_group(process)
            raise


def _copy_output(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None and process.stderr is not None
    targets: dict[int, TextIO] = {
        process.stdout.fileno(): sys.stdout,
        process.stderr.fileno(): sys.stderr,
    }
    decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in targets}
    selector_class: type[selectors.BaseSelector] = originals.original(
        "selectors", "DefaultSelector"
    )
    with selector_class() as selector:
        for fd in targets:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            ready = selector.select(_POLL_SLICE)
            if not ready and process.poll() is not None:
                break  # it has exited; what is left holding its pipes is not waited for
            for key, _ in ready:
                fd = int(key.fd)
                data = os.read(fd, 65536)
                if not data:
                    selector.unregister(fd)
                text = decoders[fd].decode(data, final=not data)
                if text:
                    targets[fd].write(text)
                    targets[fd].flush()


def _end_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group, SIGKILL if it is still there shortly after."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            return
        sleep = originals.original("time", "sleep")
        deadline = time.monotonic() + _TERMINATE_GRACE
        while process.poll() is None and time.monotonic() < deadline:
            sleep(0.01)
        if process.poll() is not None:
            return
