"""Output throughput: an exec writing 50 MB, read to the end by ssh (1 MB writes, and
1 KB ``print()`` lines).

Baselines, same run: OpenSSH's sshd (a private one on loopback, see bench/_sshd.py)
running ``head -c 50M /dev/zero`` for ``ssh host 'head -c 50M /dev/zero'``: the same
client, encryption and loopback with a C server; and the same 50 MB written by a local
Python process into a pipe (no SSH, no encryption): this machine's ceiling for the code.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench._harness import Host, Row, keys, ssh_argv
from bench._sshd import NOT_INSTALLED, private_sshd

SIZE = 50 << 20
CODE = f"import sys\nblock = 'x' * (1 << 20)\nfor _ in range({SIZE >> 20}): sys.stdout.write(block)"
LINES = f"line = 'y' * 1023\nfor _ in range({SIZE >> 10}): print(line)"


def _rate(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, check=True, capture_output=True)
    assert len(result.stdout) == SIZE, len(result.stdout)
    return SIZE / (time.perf_counter() - started) / (1 << 20)


def measure() -> list[Row]:
    with keys() as bench_keys, private_sshd(bench_keys.authorized_keys) as sshd:
        host = Host(bench_keys)
        try:
            blocks = _rate(ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", CODE))
            lines = _rate(ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", LINES))
        finally:
            host.close()
        sshd_cell = NOT_INSTALLED
        if sshd is not None:
            zero = ssh_argv(sshd.port, bench_keys.client_key, "127.0.0.1", "head -c 50M /dev/zero")
            sshd_cell = f"{_rate(zero):.0f} MB/s sshd head -c 50M"
    local = _rate([sys.executable, "-c", CODE])
    return [
        Row(
            "output throughput, 50 MB (1 MB writes / 1 KB print lines)",
            f"{blocks:.0f} / {lines:.0f} MB/s",
            f"{sshd_cell}; {local:.0f} MB/s local pipe",
            "> 50 MB/s",
            min(blocks, lines) > 50,
        )
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
