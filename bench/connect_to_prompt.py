"""Connect-to-prompt: real ssh in a PTY, from spawn until the empty ``>>>`` is drawn.

Baseline, same run: the same ssh login running the cheapest exec (``None``), i.e. the SSH
handshake and authentication alone; and OpenSSH's sshd running ``python3 -q -i`` when
/usr/sbin/sshd is installed (``apt-get install openssh-server``).
"""

from __future__ import annotations

import subprocess
import time

from bench._harness import Host, Row, Terminal, at_empty_prompt, keys, median_ms, ssh_argv

RUNS = 20


def measure() -> list[Row]:
    with keys() as bench_keys:
        host = Host(bench_keys)
        try:
            Terminal(ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1")).close()
            prompt_times, handshake_times = [], []
            for _ in range(RUNS):
                started = time.perf_counter()
                terminal = Terminal(ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1"))
                prompt_times.append(terminal.wait_for(at_empty_prompt()) - started)
                terminal.close()
                started = time.perf_counter()
                subprocess.run(
                    ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", "None"), check=True
                )
                handshake_times.append(time.perf_counter() - started)
        finally:
            host.close()
    prompt, handshake = median_ms(prompt_times), median_ms(handshake_times)
    return [
        Row(
            "connect-to-prompt (median of 20)",
            f"{prompt:.1f} ms",
            f"{handshake:.1f} ms ssh exec 'None'; sshd: not installed",
            "< 60 ms (issue 5), < 100 ms (issue 2)",
            prompt < 60,
        )
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
