"""Peer: python-manhole (PyPI ``manhole``, this project's seed) against ours, the same run.

python-manhole listens on a Unix socket in a host process (bench/host.py
``--python-manhole``); a client in this process connects, reads until the ``>>> `` prompt
(after the thread dump and banner python-manhole prints at every connection), sends
``1+41\\n`` and reads until ``42``: median of 20 connect-and-evals, each starting once the
previous connection's thread has ended.

Ours, measured alternately on another host: the whole ``ssh host '1+41'`` process (exec);
``ssh -tt`` in a PTY from spawn until the prompt is drawn, then ``1+41⏎`` until ``42`` is
drawn (a terminal session); and asyncssh's client in this process connecting and running
the exec (no process to start, like the socket client above). No target: the row shows
what encryption, key authentication and a real REPL cost over a plain Unix socket.

The terminal session types once the prompt is completely drawn: ptpython draws it, then
draws it again with its status bar once the terminal has said where the cursor is. Typed
into the first drawing (as a paste or a script might), the result often came a second late
(prompt_toolkit's wait for a cursor-position report); any sample that still does is counted
in the cell.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

import asyncssh
import pyte

from bench._harness import (
    Host,
    Keys,
    Row,
    Terminal,
    at_empty_prompt,
    keys,
    median_ms,
    ssh_argv,
)

RUNS = 20
TIMEOUT = 10.0
_EMPTY_PROMPT = at_empty_prompt()


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def _read_until(connection: socket.socket, marker: bytes, deadline: float) -> bytes:
    data = b""
    while marker not in data:
        connection.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = connection.recv(65536)
        if not chunk:
            raise EOFError(f"python-manhole closed the connection: {data[-200:]!r}")
        data += chunk
    return data


def _peer_once(path: Path) -> float:
    deadline = time.monotonic() + TIMEOUT
    started = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(str(path))
        _read_until(connection, b">>> ", deadline)
        connection.sendall(b"1+41\n")
        _read_until(connection, b"42\n", deadline)
        return time.perf_counter() - started


def _wait_peer_idle(host: Host, threads: int) -> None:
    """Until python-manhole's connection thread has ended (it serves one at a time)."""
    deadline = time.monotonic() + TIMEOUT
    while _threads(host.pid) > threads:
        if time.monotonic() > deadline:
            raise TimeoutError("python-manhole's connection thread did not end")
        time.sleep(0.001)


def _wait_socket(path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("python-manhole did not bind its socket")
        time.sleep(0.001)


def _prompt_complete(screen: pyte.Screen) -> bool:
    """The empty prompt, and ptpython's status bar (its second drawing)."""
    return _EMPTY_PROMPT(screen) and any("[F4]" in line for line in screen.display)


def _result_line(screen: pyte.Screen) -> bool:
    """``42`` on a line of its own (the banner's host key fingerprint may hold "42")."""
    return any(line.strip() == "42" for line in screen.display)


def _exec_once(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    assert result.stdout.strip() == b"42", result.stdout
    return elapsed


def _terminal_once(argv: list[str]) -> float:
    started = time.perf_counter()
    terminal = Terminal(argv)
    try:
        terminal.wait_for(_prompt_complete)
        terminal.child.send("1+41\r")
        return terminal.wait_for(_result_line) - started
    finally:
        terminal.close()


async def _asyncssh_once(port: int, key: asyncssh.SSHKey) -> float:
    started = time.perf_counter()
    async with asyncssh.connect(
        "127.0.0.1",
        port,
        username="root",
        client_keys=[key],
        known_hosts=None,
        agent_path=None,
    ) as connection:
        result = await connection.run("1+41", check=True)
    elapsed = time.perf_counter() - started
    assert str(result.stdout).strip() == "42", result.stdout
    return elapsed


def _samples(bench_keys: Keys, peer: Host, ours: Host, path: Path) -> dict[str, list[float]]:
    exec_argv = ssh_argv(ours.port, bench_keys.client_key, "127.0.0.1", "1+41")
    pty_argv = ssh_argv(ours.port, bench_keys.client_key, "-tt", "127.0.0.1")
    key = asyncssh.read_private_key(bench_keys.client_key)
    loop = asyncio.new_event_loop()
    try:
        _wait_socket(path)
        threads = _threads(peer.pid)
        _peer_once(path)  # warm up both: first imports, first connections
        _exec_once(exec_argv)
        _terminal_once(pty_argv)
        loop.run_until_complete(_asyncssh_once(ours.port, key))
        samples: dict[str, list[float]] = {"peer": [], "exec": [], "pty": [], "asyncssh": []}
        for _ in range(RUNS):
            _wait_peer_idle(peer, threads)
            samples["peer"].append(_peer_once(path))
            samples["exec"].append(_exec_once(exec_argv))
            samples["pty"].append(_terminal_once(pty_argv))
            samples["asyncssh"].append(loop.run_until_complete(_asyncssh_once(ours.port, key)))
        return samples
    finally:
        loop.close()


def measure() -> list[Row]:
    with keys() as bench_keys:
        path = bench_keys.client_key.parent / "python-manhole.sock"
        peer = Host(bench_keys, "--python-manhole", str(path))
        try:
            ours = Host(bench_keys)
            try:
                samples = _samples(bench_keys, peer, ours, path)
            finally:
                ours.close()
        finally:
            peer.close()
    median = {name: median_ms(values) for name, values in samples.items()}
    prompt = [sample for sample in samples["pty"] if sample <= 0.9]
    stalled = ""
    if len(prompt) < RUNS:
        stalled = f" ({RUNS - len(prompt)}/{RUNS} a second late"
        stalled += f", the others {median_ms(prompt):.1f} ms)" if prompt else ")"
    return [
        Row(
            "peer: connect and eval 1+41 (median of 20)",
            f"{median['exec']:.1f} ms ssh exec; {median['pty']:.1f} ms ssh PTY to 42 drawn"
            f"{stalled}; "
            f"{median['asyncssh']:.1f} ms asyncssh client exec",
            f"{median['peer']:.1f} ms python-manhole, Unix socket",
            "- (for comparison)",
            None,
        )
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
