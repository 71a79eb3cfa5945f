"""Idle cost: CPU used by the host over 10 s idle (issue 5 says 30 s: targets scaled),
after install() with no session and with 10 idle terminal sessions; baseline, the same
host without a manhole. Also the throughput of a CPU-bound host thread with 10 idle
sessions against none (host impact)."""

from __future__ import annotations

import subprocess
import time

from bench._harness import Host, Keys, Row, Terminal, at_empty_prompt, cpu_seconds, keys, ssh_argv

WINDOW = 10.0


def _cpu_over_window(host: Host) -> float:
    before = cpu_seconds(host.pid)
    time.sleep(WINDOW)
    return (cpu_seconds(host.pid) - before) * 1000


def _idle_cpu(bench_keys: Keys, sessions: int, *options: str) -> float:
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
        time.sleep(1.0)  # let the sessions settle (first drawings, timers)
        return _cpu_over_window(host)
    finally:
        for terminal in terminals:
            terminal.close()
        host.close()


def measure() -> list[Row]:
    with keys() as bench_keys:
        baseline = _idle_cpu(bench_keys, 0, "--no-manhole")
        unused = _idle_cpu(bench_keys, 0)
        with_sessions = _idle_cpu(bench_keys, 10)
    scale = WINDOW / 30
    return [
        Row(
            f"idle CPU over {WINDOW:.0f} s, no session",
            f"{unused:.0f} ms",
            f"{baseline:.0f} ms without install()",
            f"< {10 * scale:.1f} ms (10 ms / 30 s)",
            unused - baseline < 10 * scale,
        ),
        Row(
            f"idle CPU over {WINDOW:.0f} s, 10 idle sessions",
            f"{with_sessions:.0f} ms",
            f"{baseline:.0f} ms without install()",
            f"< {50 * scale:.1f} ms (50 ms / 30 s)",
            with_sessions - baseline < 50 * scale,
        ),
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
