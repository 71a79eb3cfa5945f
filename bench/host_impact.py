"""Host impact: the throughput of a CPU-bound host thread (bench/host.py ``--busy``: a
pure-Python loop counting its iterations) with 10 idle terminal sessions open (real ssh
clients in PTYs, at the prompt), against the same host with no session.

Baseline, same run and same process: the no-session windows. Windows of 2 s go in
blocks of none, 10, 10, none (linear drift cancels out within a block), 6 blocks; the
figure is the median of the blocks' ratios. Sessions are opened and closed between
windows, and each window starts once the host's other threads are quiet. Loops, time and
the busy thread's run-queue wait are read inside the host at both ends of a window.

The figure is loops per second of the time the busy thread had the CPU available, i.e.
wall time less its run-queue wait (time it was ready but the kernel ran another process:
on a shared 2-core machine, other people's work, not the manhole's; the manhole's threads
take the GIL, which the busy thread waits for asleep, not in the run queue). The plain
wall-clock ratio is shown beside it. Target: at least 0.97.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

from bench._harness import Host, Keys, Row, Terminal, at_empty_prompt, keys, ssh_argv

WINDOW = 2.0
SESSIONS = 10
BLOCK = (False, True, True, False)  # with sessions?
BLOCKS = 6


def _sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            continue  # closed meanwhile
    return count


class _Window:
    """One window: the busy thread's loops per second (wall clock, and of the time the CPU
    was its to use), and the CPU the host's other threads used (ms per second)."""

    def __init__(self, host: Host) -> None:
        loops, now, process, busy, waited = host.ask("LOOPS")
        time.sleep(WINDOW)  # the measured window
        loops2, now2, process2, busy2, waited2 = host.ask("LOOPS")
        seconds = (now2 - now) / 1e9
        self.wall_rate = (loops2 - loops) / seconds
        self.rate = (loops2 - loops) / (seconds - (waited2 - waited) / 1e9)
        self.other_cpu = ((process2 - busy2) - (process - busy)) / 1e6 / seconds


def _open(host: Host, bench_keys: Keys) -> list[Terminal]:
    terminals = []
    for _ in range(SESSIONS):
        terminal = Terminal(ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_for(at_empty_prompt())
        terminals.append(terminal)
    return terminals


def _close(host: Host, terminals: list[Terminal], sockets: int) -> None:
    for terminal in terminals:
        terminal.close()
    deadline = time.monotonic() + 20
    while _sockets(host.pid) > sockets:  # until the host has let go of every connection
        if time.monotonic() > deadline:
            raise TimeoutError("the host kept the closed sessions' sockets")
        time.sleep(0.01)


def _ratio(windows: list[tuple[bool, _Window]], wall: bool = False) -> float:
    rates: dict[bool, float] = {False: 0.0, True: 0.0}
    for with_sessions, window in windows:
        rates[with_sessions] += window.wall_rate if wall else window.rate
    return rates[True] / rates[False]


def measure() -> list[Row]:
    windows: list[tuple[bool, _Window]] = []
    with keys() as bench_keys:
        host = Host(bench_keys, "--busy")
        terminals: list[Terminal] = []
        try:
            subprocess.run(
                ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", "None"), check=True
            )
            sockets = _sockets(host.pid)
            _close(host, _open(host, bench_keys), sockets)  # warm up: imports, first draws
            for with_sessions in BLOCK * BLOCKS:
                if with_sessions and not terminals:
                    terminals = _open(host, bench_keys)
                elif not with_sessions and terminals:
                    _close(host, terminals, sockets)
                    terminals = []
                host.settle()
                windows.append((with_sessions, _Window(host)))
        finally:
            for terminal in terminals:
                terminal.close()
            host.close()
    blocks = [windows[start : start + len(BLOCK)] for start in range(0, len(windows), len(BLOCK))]
    ratio = statistics.median(_ratio(block) for block in blocks)
    wall_ratio = statistics.median(_ratio(block, wall=True) for block in blocks)
    other_cpu = statistics.mean(
        window.other_cpu for with_sessions, window in windows if with_sessions
    )
    without = statistics.mean(
        window.wall_rate for with_sessions, window in windows if not with_sessions
    )
    return [
        Row(
            f"host impact: busy thread with {SESSIONS} idle sessions",
            f"{ratio:.3f}x ({wall_ratio:.3f}x by wall clock; manhole threads {other_cpu:.2f} ms/s)",
            f"{without / 1e6:.1f} M loops/s with no session",
            ">= 0.97",
            ratio >= 0.97,
        )
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
