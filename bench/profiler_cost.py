"""The debugging helpers' cost to the host: throughput of a CPU-bound host thread (bench/
host.py ``--busy``) while a session runs ``top()`` (sampling every thread at 100 Hz) or
``watch()`` (a watchdog pinging the host's asyncio loop every 100 ms and timing full
garbage collections), against the same host with a session that only sleeps (so that the
figure is the helper's cost, not an open session's: that one is bench/host_impact.py's).

Baseline, same run and same process: the windows with the sleeping session. Windows of 2 s go
in blocks of none, top, watch, watch, top, none (linear drift cancels out within a
block), 5 blocks; the figure is the median of the blocks' ratios, measured as in
bench/host_impact.py (loops per second of the time the busy thread had the CPU
available; the wall-clock ratio beside it). Beside them, the CPU the host's threads other
than the busy one used (ms per second): the sampler's or watchdog's own work, which
holds the GIL, less noisy than the ratio on a loaded machine. Target: at least 0.95.
"""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

from bench._harness import Host, Row, keys, ssh_argv
from bench.host_impact import _Window

WINDOW = 2.0
BLOCK = ("none", "top", "watch", "watch", "top", "none")
BLOCKS = 5
CODE = {
    "none": f"print('go', flush=True); import time; time.sleep({WINDOW + 0.5})",
    "top": f"print('go', flush=True); top({WINDOW + 0.5})",
    "watch": f"print('go', flush=True); watch(loop_ms=100, seconds={WINDOW + 0.5})",
}


def _start(host: Host, client_key: Path, helper: str) -> subprocess.Popen[str]:
    """An exec session running ``helper``, once it has begun (it printed ``go``)."""
    session = subprocess.Popen(
        ssh_argv(host.port, client_key, "127.0.0.1", CODE[helper]),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # ("Sampling…", "Watching…")
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert session.stdout is not None
    if session.stdout.readline() != "go\n":
        raise RuntimeError(f"{helper}() did not start")
    return session


def _ratio(windows: list[tuple[str, _Window]], helper: str, wall: bool = False) -> float:
    rates: dict[str, list[float]] = {}
    for kind, window in windows:
        rates.setdefault(kind, []).append(window.wall_rate if wall else window.rate)
    return statistics.mean(rates[helper]) / statistics.mean(rates["none"])


def measure() -> list[Row]:
    windows: list[tuple[str, _Window]] = []
    with keys() as bench_keys:
        host = Host(bench_keys, "--busy", "--loop")
        try:
            for helper in ("top", "watch"):  # warm up: the session's imports
                _start(host, bench_keys.client_key, helper).communicate(timeout=30)
            for kind in BLOCK * BLOCKS:
                host.settle()
                session = _start(host, bench_keys.client_key, kind)
                windows.append((kind, _Window(host)))
                session.communicate(timeout=30)
        finally:
            host.close()
    size = len(BLOCK)
    blocks = [windows[start : start + size] for start in range(0, len(windows), size)]
    rows = []
    for helper, what in (
        ("top", "top() sampling all threads at 100 Hz"),
        ("watch", "watch() pinging the loop every 100 ms"),
    ):
        ratio = statistics.median(_ratio(block, helper) for block in blocks)
        wall = statistics.median(_ratio(block, helper, wall=True) for block in blocks)
        without = statistics.mean(window.wall_rate for kind, window in windows if kind == "none")
        cpu = statistics.mean(window.other_cpu for kind, window in windows if kind == helper)
        idle = statistics.mean(window.other_cpu for kind, window in windows if kind == "none")
        rows.append(
            Row(
                f"host cost: busy thread while {what}",
                f"{ratio:.3f}x ({wall:.3f}x by wall clock; other threads {cpu:.1f} ms/s)",
                f"{without / 1e6:.1f} M loops/s, other threads {idle:.1f} ms/s, "
                "with a sleeping session",
                ">= 0.95",
                ratio >= 0.95,
            )
        )
    return rows


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
