"""The host's own output stays its own: clients that vanish leave nothing on its stderr."""

from __future__ import annotations

import os
import select
from collections.abc import Callable

from conftest import Keys, Terminal, exec_code, ssh_argv, start_host, stop_host

OpenTerminal = Callable[..., Terminal]


def _stderr_so_far(stream_fd: int) -> bytes:
    collected = b""
    while select.select([stream_fd], [], [], 0)[0]:
        chunk = os.read(stream_fd, 65536)
        if not chunk:
            break
        collected += chunk
    return collected


def test_clients_killed_mid_output_leave_the_host_stderr_alone(
    terminals: OpenTerminal, keys: Keys
) -> None:
    """asyncio logged "socket.send() raised exception." to the host's stderr (its
    ``asyncio`` logger, in a host with no logging set up) when a client died while the
    server was still sending to it."""
    host = start_host(keys)
    try:
        assert host.process.stderr is not None
        for number in range(6):
            terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
            terminal.wait_prompt()
            if number % 2:  # killed while the REPL draws a screen after each line
                terminal.send("while True: print('x' * 200)\r")
                terminal.expect("xxxxxxxxxx")
            else:  # killed while it draws the prompt again after a resize
                terminal.resize(60, 20)
            terminal.child.kill(9)
            terminal.child.close()
        assert exec_code(host.port, keys.client_key, "'serving'").stdout == "'serving'\n"
        assert host.alive()
        assert _stderr_so_far(host.process.stderr.fileno()) == b""
    finally:
        stop_host(host)
