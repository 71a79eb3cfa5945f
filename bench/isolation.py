"""Isolation: one session's paste does not slow another's typing, and clients that stop
reading do not fill the host's memory.

**Keystroke echo during another session's paste.** Session A pastes 1 MB into its prompt
(bracketed, as a terminal sends a paste: ``ESC[200~`` … ``ESC[201~``, 10,000 lines of
code) and clears it with Ctrl-C, again and again, from a process of its own; meanwhile session
B types 200 characters one at a time, each timed until it is drawn (median, as in
eval_round_trip.py). Baseline, same run, same host: B's echo while A sits idle at its
prompt. Target: at most 2x the idle echo. On 2 cores the paste's own work (ssh's
encryption, the server decoding it, ptpython taking it in) shares the CPU with B's
echo: a second baseline times B while A pastes the same way into another host process,
where A can only take CPU from B, never the manhole's loop. The gap between the two is
what sharing the loop costs.

**RSS under stalled readers.** 8 connections from asyncssh's client, each announcing a
4 GB SSH window, each running a statement that prints 1 GB (1,000,000 lines of 1 kB),
each then reading nothing more (its socket is no longer read). The host is not made to
print 8 GB: once each statement waits in its write (seen from a ninth session: 8 threads
waiting in the session stream), its memory holds still, and printing further would only
repeat that wait. The figure is the host's RSS then, less its RSS before the 8 connected
(once a first session has made the manhole import what it needs),
taken again after a second to show that it holds. Baseline, same run and host: the same 8
connections running a statement that prints nothing (it sleeps): what 8 sessions
cost without any output. Target: under +64 MB.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import time
from typing import Any

import asyncssh
import pexpect

from bench._harness import Host, Keys, Row, Terminal, at_empty_prompt, keys, median_ms, rss_kb
from bench._harness import ssh_argv as harness_ssh_argv
from bench.eval_round_trip import KEYSTROKES, _Repl

PASTE = "\x1b[200~" + "".join(f"value_{n:05} = {'7' * 84}\n" for n in range(10_000)) + "\x1b[201~"
STALLED = 8
PRINT_1_GB = "for _ in range(1_000_000): print('x' * 1023)"
SLEEP = "import time\ndef stalled_sleep(): time.sleep(60)\nstalled_sleep()"


def _paste_forever(argv: list[str], stop: Any, pastes: Any) -> None:
    """Session A, in a process of its own (a thread would take the GIL from B's timing):
    pastes until told to stop."""
    terminal = Terminal(argv)
    terminal.wait_for(at_empty_prompt())
    child = terminal.child
    while not stop.is_set():
        for start in range(0, len(PASTE), 16384):
            child.send(PASTE[start : start + 16384])
            try:
                while data := child.read_nonblocking(65536, timeout=0):
                    terminal.stream.feed(data)  # (the screen answers ESC[6n, as a terminal)
            except (pexpect.TIMEOUT, pexpect.EOF):
                pass
        child.send("\x03")  # Ctrl-C: an empty prompt again
        with pastes.get_lock():
            pastes.value += 1
    terminal.close()


def _echo_during_paste(
    typing_host: Host, pasting_host: Host, bench_keys: Keys
) -> tuple[float, float, int]:
    """B's echo on ``typing_host``, idle, then while A pastes into ``pasting_host``:
    medians (ms), and how many pastes A made meanwhile."""
    typing_argv = harness_ssh_argv(typing_host.port, bench_keys.client_key, "-tt", "127.0.0.1")
    pasting_argv = harness_ssh_argv(pasting_host.port, bench_keys.client_key, "-tt", "127.0.0.1")
    processes = multiprocessing.get_context("fork")
    stop, pastes = processes.Event(), processes.Value("i", 0)
    paster = processes.Process(
        target=_paste_forever, args=(pasting_argv, stop, pastes), daemon=True
    )
    typing = _Repl(typing_argv, ">>>", "[F4]")
    try:
        idle = _keystrokes(typing)
        paster.start()
        deadline = time.monotonic() + 60
        while pastes.value == 0 and time.monotonic() < deadline:  # pasting, for a while now
            time.sleep(0.05)
        busy = _keystrokes(typing)
        done = pastes.value
        stop.set()
        paster.join(30)
        return median_ms(idle), median_ms(busy), done
    finally:
        if paster.is_alive():
            paster.kill()
        typing.terminal.close()


def _keystrokes(typing: _Repl) -> list[float]:
    """KEYSTROKES characters typed one at a time, each timed until drawn (as in
    eval_round_trip.py), and the line cleared after."""
    typing.keystrokes.clear()
    for _ in range(KEYSTROKES):
        typing.keystroke()
    typing.clear_line()
    return list(typing.keystrokes)


def _waiting_in(host: Host, bench_keys: Keys, fragment: str) -> int:
    """How many threads of the host have ``fragment`` in a line of their stack."""
    probe = (
        "import sys, traceback; sum(any(" + repr(fragment) + " in line for line in "
        "traceback.format_stack(frame)) for frame in sys._current_frames().values())"
    )
    completed = subprocess.run(
        harness_ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", probe),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return int(completed.stdout.strip() or 0)


async def _stalled(host: Host, bench_keys: Keys, code: str, waiting_on: str) -> tuple[int, int]:
    """RSS growth (kB) once STALLED clients run ``code`` and read nothing, and a second on."""
    key = asyncssh.read_private_key(bench_keys.client_key)
    await asyncio.to_thread(_waiting_in, host, bench_keys, "")  # asyncssh etc. imported
    before = rss_kb(host.pid)
    connections: list[Any] = []
    try:
        for _ in range(STALLED):
            connection = await asyncssh.connect(
                "127.0.0.1",
                host.port,
                username="bench",
                client_keys=[key],
                known_hosts=None,
                agent_path=None,
                config=None,
            )
            connections.append(connection)
            await connection.create_process(code, window=2**32 - 1)
            connection._transport.pause_reading()
        deadline = time.monotonic() + 60
        while await asyncio.to_thread(_waiting_in, host, bench_keys, waiting_on) < STALLED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {STALLED} statements did not all reach {waiting_on!r}")
        grown = rss_kb(host.pid) - before
        await asyncio.sleep(1)  # a measured interval: does it hold?
        return grown, rss_kb(host.pid) - before
    finally:
        for connection in connections:
            connection.abort()


def measure() -> list[Row]:
    with keys() as bench_keys:
        host, elsewhere = Host(bench_keys), Host(bench_keys)
        try:
            idle, busy, pastes = _echo_during_paste(host, host, bench_keys)
            _, busy_elsewhere, _ = _echo_during_paste(host, elsewhere, bench_keys)
        finally:
            host.close()
            elsewhere.close()
        host = Host(bench_keys)
        try:
            base_grown, _ = asyncio.run(_stalled(host, bench_keys, SLEEP, "in stalled_sleep"))
        finally:
            host.close()
        host = Host(bench_keys)
        try:
            grown, later = asyncio.run(_stalled(host, bench_keys, PRINT_1_GB, "in _write_piece"))
        finally:
            host.close()
    ratio = busy / idle
    return [
        Row(
            f"keystroke echo during another session's 1 MB paste (median of 200, {pastes} pastes)",
            f"{busy:.1f} ms ({ratio:.1f}x idle)",
            f"{idle:.1f} ms, the other session idle; {busy_elsewhere:.1f} ms "
            f"({busy_elsewhere / idle:.1f}x) while it pastes into another host process",
            "<= 2x idle",
            ratio <= 2,
        ),
        Row(
            f"host RSS, {STALLED} clients with a 4 GB window printing 1 GB each, reading nothing",
            f"+{grown / 1024:.0f} MB (+{later / 1024:.0f} MB 1 s later)",
            f"+{base_grown / 1024:.0f} MB, {STALLED} sessions printing nothing",
            "< +64 MB",
            max(grown, later) < 64 * 1024,
        ),
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
