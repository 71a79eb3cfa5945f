"""Output throughput: an exec writing 50 MB, read to the end by ssh.

Baseline, same run: the same 50 MB written by a local Python process into a pipe
(no SSH, no encryption), i.e. the ceiling of this machine for the same code.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench._harness import Host, Row, keys, ssh_argv

SIZE = 50 << 20
CODE = f"import sys\nblock = 'x' * (1 << 20)\nfor _ in range({SIZE >> 20}): sys.stdout.write(block)"
LINES = f"line = 'y' * 1023\nfor _ in range({SIZE >> 10}): print(line)"


def _rate(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, check=True, capture_output=True)
    assert len(result.stdout) == SIZE, len(result.stdout)
    return SIZE / (time.perf_counter() - started) / (1 << 20)


def measure() -> list[Row]:
    with keys() as bench_keys:
        host = Host(bench_keys)
        try:
            blocks = _rate(ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", CODE))
            lines = _rate(ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", LINES))
        finally:
            host.close()
    local = _rate([sys.executable, "-c", CODE])
    return [
        Row(
            "output throughput, 50 MB (1 MB writes / 1 KB print lines)",
            f"{blocks:.0f} / {lines:.0f} MB/s",
            f"{local:.0f} MB/s local pipe; sshd: not installed",
            "> 50 MB/s",
            min(blocks, lines) > 50,
        )
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
