"""Breakpoint cost: what ``manhole_ssh.set_trace()`` costs a hot loop that does not stop
there, per call: with no manhole running (it logs once a minute and returns), and with a
manhole running while another thread already waits at that line (the loop's other calls
go on at once).

Baseline, same run, same process: a call to an empty function. Best of 3 runs of 200 000
calls each, in a child process of its own (a manhole is installed there).
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench._harness import Row, keys

_CHILD = r"""
import json, logging, sys, threading, time
import manhole_ssh

def empty():
    pass

def per_call(function, calls=200_000):
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls * 1e9)
    return best

def at_one_line():
    manhole_ssh.set_trace()

logging.disable(logging.WARNING)
figures = {"empty": per_call(empty), "no_manhole": per_call(at_one_line)}
manhole = manhole_ssh.install(port=0, authorized_keys=sys.argv[1], host_key=sys.argv[2])
threading.Thread(target=at_one_line, daemon=True).start()  # waits at that line
time.sleep(0.5)
figures["other_waits"] = per_call(at_one_line)
manhole.stop()
print(json.dumps(figures))
"""

TARGET_NS = 10_000  # a breakpoint that does not stop must not cost a loop more than 10 µs


def measure() -> list[Row]:
    with keys() as bench_keys:
        output = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(bench_keys.authorized_keys),
                str(bench_keys.host_key),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    empty = figures["empty"]
    rows = []
    for key, label in (
        ("no_manhole", "set_trace() per call, no manhole running"),
        ("other_waits", "set_trace() per call, another thread waits at that line"),
    ):
        cost = figures[key]
        rows.append(
            Row(
                label,
                f"{cost / 1000:.2f} µs ({cost / empty:.0f}x an empty call)",
                f"{empty:.0f} ns an empty call",
                "< 10 µs",
                cost < TARGET_NS,
            )
        )
    return rows


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
