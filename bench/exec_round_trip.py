"""Exec round trip: the whole ``ssh host '1+1'`` process, against the cheapest exec."""

from __future__ import annotations

import subprocess
import time

from bench._harness import Host, Row, keys, median_ms, ssh_argv

RUNS = 20


def measure() -> list[Row]:
    with keys() as bench_keys:
        host = Host(bench_keys)
        try:

            def run(code: str) -> float:
                argv = ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", code)
                started = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True)
                return time.perf_counter() - started

            run("None")
            pairs = [(run("1+1"), run("None")) for _ in range(RUNS)]
        finally:
            host.close()
    ours, baseline = median_ms([p[0] for p in pairs]), median_ms([p[1] for p in pairs])
    return [
        Row(
            "exec round trip (median of 20)",
            f"{ours:.1f} ms ({ours / baseline:.2f}x)",
            f"{baseline:.1f} ms ssh exec 'None'",
            "< 1.2x",
            ours / baseline < 1.2,
        )
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
