"""Idle cost: CPU time the host process uses over 30 s idle after ``install()``, with no
session and with 10 idle terminal sessions (real ssh clients in PTYs, at the prompt).

Baseline, same run: the same host without ``install()``. CPU time is the host's own
``process_time`` (every thread, ns precision), read at both ends of the window; the
window starts once the host has gone quiet (under 1 ms of CPU in 0.2 s) after the
sessions have drawn their prompts. Targets: under 10 ms with no session, under 50 ms with
10 (the host's whole CPU, baseline included).
"""

from __future__ import annotations

import subprocess
import time

from bench._harness import Host, Keys, Row, Terminal, at_empty_prompt, keys, ssh_argv

WINDOW = 30.0
SESSIONS = 10


def _idle_cpu(bench_keys: Keys, sessions: int, *options: str) -> float:
    """The host's CPU over the idle window, in ms."""
    host = Host(bench_keys, *options)
    terminals = []
    try:
        if sessions:
            subprocess.run(
                ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", "None"), check=True
            )
        for _ in range(sessions):
            terminal = Terminal(ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1"))
            terminal.wait_for(at_empty_prompt())
            terminals.append(terminal)
        host.settle()
        before = host.cpu_ms()
        time.sleep(WINDOW)  # the measured idle window
        return host.cpu_ms() - before
    finally:
        for terminal in terminals:
            terminal.close()
        host.close()


def measure() -> list[Row]:
    with keys() as bench_keys:
        baseline = _idle_cpu(bench_keys, 0, "--no-manhole")
        unused = _idle_cpu(bench_keys, 0)
        with_sessions = _idle_cpu(bench_keys, SESSIONS)
    without = f"{baseline:.1f} ms without install()"
    return [
        Row(
            f"idle CPU over {WINDOW:.0f} s, no session",
            f"{unused:.1f} ms",
            without,
            "< 10 ms",
            unused < 10,
        ),
        Row(
            f"idle CPU over {WINDOW:.0f} s, {SESSIONS} idle sessions",
            f"{with_sessions:.1f} ms",
            without,
            "< 50 ms",
            with_sessions < 50,
        ),
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
