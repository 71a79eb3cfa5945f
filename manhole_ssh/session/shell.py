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
import signal
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from ..green import originals
from .streams import on_a_host_loop

__all__ = ["sh"]

# How often the copying loop returns to Python code, where Ctrl-C (an asynchronous
# KeyboardInterrupt in the worker thread) is raised.
_POLL_SLICE = 0.05
# After Ctrl-C, how long the child's process group gets to end on SIGTERM before SIGKILL:
# well within the executor's grace, so that the statement ends here rather than being
# left behind.
_TERMINATE_GRACE = 0.2


def sh(command: str | Sequence[str]) -> int | None:
    """Run ``command`` with its output and errors streamed to this session; return its exit
    status (negative: killed by that signal), as ``subprocess.call`` does, or ``None`` when
    the host reaped the process itself and the status is lost (a gevent host's hub reaps
    every child).

    :param command: a shell command line (run by ``/bin/sh``), or a list of arguments (run
        without a shell, the program looked up in ``PATH``).

    The command reads nothing (its stdin is ``/dev/null``) and runs in a session and process
    group of its own; Ctrl-C ends it, and every process of that group, then raises
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
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        # The real posix_spawnp, not subprocess: gevent's (and its posix_spawnp) watch the
        # child with the hub's loop, which cannot be done from the session's OS thread.
        spawn = originals.original("os", "posix_spawnp")
        pid = spawn(
            argv[0],
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_write, 1),
                (os.POSIX_SPAWN_DUP2, err_write, 2),
            ],
            setsid=True,
            # As subprocess does: Python ignores SIGPIPE, which `yes | head` must not.
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except BaseException:
        for descriptor in (out_read, out_write, err_read, err_write):
            os.close(descriptor)
        raise
    os.close(out_write)
    os.close(err_write)
    try:
        _copy_output(pid, {out_read: sys.stdout, err_read: sys.stderr})
        code = _wait(pid)
        if code is None:
            sys.stderr.write("sh: exit status unknown: the host reaped the process itself\n")
        return code
    except BaseException:
        _end_process_group(pid)
        raise
    finally:
        os.close(out_read)
        os.close(err_read)


def _copy_output(pid: int, targets: dict[int, TextIO]) -> None:
    """Copy what the child writes to ``targets`` until its pipes close, or it has exited and
    nothing more is waiting (a process it left in the background may hold them open)."""
    select = originals.original("select", "select")
    decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in targets}
    open_descriptors = list(targets)
    while open_descriptors:
        ready, _, _ = select(open_descriptors, [], [], _POLL_SLICE)
        if not ready and _ended(pid):
            break
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_descriptors.remove(fd)
            text = decoders[fd].decode(data, final=not data)
            if text:
                targets[fd].write(text)
                targets[fd].flush()


# Children that have ended while still watched here: pid -> exit code (None: unknown,
# the host reaped it itself, as a gevent hub's SIGCHLD handler does with every child).
_exited: dict[int, int | None] = {}


def _ended(pid: int) -> bool:
    """Whether the child has ended (it is reaped then, and its exit code kept)."""
    if pid in _exited:
        return True
    waitpid = originals.original("os", "waitpid")  # gevent's waits in its hub's thread
    try:
        reaped, status = waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        _exited[pid] = None
        return True
    if reaped == 0:
        return False
    _exited[pid] = os.waitstatus_to_exitcode(status)
    return True


def _wait(pid: int) -> int | None:
    """Wait for the child in short sleeps, where Ctrl-C is raised; its exit code."""
    sleep = originals.original("time", "sleep")
    while not _ended(pid):
        sleep(0.01)
    return _exited.pop(pid)


def _end_process_group(pid: int) -> None:
    """SIGTERM to the child's process group, SIGKILL if it is still there shortly after;
    the child is reaped."""
    sleep = originals.original("time", "sleep")
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, signal_number)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + _TERMINATE_GRACE
        while not _ended(pid) and time.monotonic() < deadline:
            sleep(0.01)
        if _ended(pid):
            break
    _exited.pop(pid, None)
