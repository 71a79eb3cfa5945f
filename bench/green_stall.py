"""A green host whose hub is stuck: exec round trip and connect-to-prompt of a gevent or
eventlet host while one greenlet computes without yielding, against the same host idle
(same run, alternating). The host is tests/green_host.py.

While the hub computes, it holds the GIL except when CPython hands it over (every 5 ms):
the manhole gets its CPU share, not the whole CPU, so the target is "a few times idle",
not "as fast": before the manhole ran on real threads, it answered only when the stall
ended (tens of seconds).
"""

from __future__ import annotations

import importlib.util
import select
import subprocess
import sys
import time
from pathlib import Path

from bench._harness import Row, keys, median_ms, seconds_to_prompt, ssh_argv

GREEN_HOST = Path(__file__).parent.parent / "tests" / "green_host.py"
RUNS = 7


class _GreenHost:
    def __init__(self, authorized_keys: Path, host_key: Path, library: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(GREEN_HOST),
                str(authorized_keys),
                str(host_key),
                library,
                "patch-first",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.port = int(self._line_starting("PORT ").split()[1])

    def _line_starting(self, prefix: str) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 1)
            line = self.process.stdout.readline() if ready else ""
            if line.startswith(prefix):
                return line
        raise RuntimeError(f"the green host did not print {prefix!r}")

    def stall(self, run: list[str]) -> None:
        subprocess.run([*run, "state['stall'] = 600"], check=True, capture_output=True)
        self._line_starting("stalling")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def _seconds(action: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(action, check=True, capture_output=True)
    return time.perf_counter() - started


def measure() -> list[Row]:
    rows = []
    for library in ("gevent", "eventlet"):
        if importlib.util.find_spec(library) is None:
            rows.append(Row(f"{library} host, hub stuck", "not installed", "", "", None))
            continue
        with keys() as bench_keys:
            idle = _GreenHost(bench_keys.authorized_keys, bench_keys.host_key, library)
            stuck = _GreenHost(bench_keys.authorized_keys, bench_keys.host_key, library)
            try:
                exec_on = {
                    host: ssh_argv(host.port, bench_keys.client_key, "127.0.0.1")
                    for host in (idle, stuck)
                }
                stuck.stall(exec_on[stuck])
                pty_on = {
                    host: ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1")
                    for host in (idle, stuck)
                }
                for host in (idle, stuck):
                    seconds_to_prompt(pty_on[host])  # the first session imports what the REPL needs
                samples: dict[str, list[float]] = {
                    "exec idle": [],
                    "exec stuck": [],
                    "prompt idle": [],
                    "prompt stuck": [],
                }
                for _ in range(RUNS):
                    samples["exec idle"].append(_seconds([*exec_on[idle], "None"]))
                    samples["exec stuck"].append(_seconds([*exec_on[stuck], "None"]))
                    samples["prompt idle"].append(seconds_to_prompt(pty_on[idle]))
                    samples["prompt stuck"].append(seconds_to_prompt(pty_on[stuck]))
                still_stuck = subprocess.run(
                    [*exec_on[stuck], "state['stalling']"], capture_output=True, text=True
                ).stdout.strip()
            finally:
                idle.close()
                stuck.close()
        for what in ("exec", "prompt"):
            ours, baseline = median_ms(samples[f"{what} stuck"]), median_ms(samples[f"{what} idle"])
            label = "exec round trip" if what == "exec" else "connect-to-prompt"
            rows.append(
                Row(
                    f"{library} host, hub stuck: {label} (median of {RUNS})",
                    f"{ours:.0f} ms ({ours / baseline:.2f}x)",
                    f"{baseline:.0f} ms same host idle",
                    "< 3x, hub still stuck",
                    ours / baseline < 3 and still_stuck == "True",
                )
            )
    return rows


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
