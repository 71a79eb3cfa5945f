"""Connect-to-prompt: real ssh in a PTY (a VT100 emulator answering ESC[6n), from spawn
until the empty ``>>>`` is drawn; median of 20.

Baseline, same run, alternating with ours: OpenSSH's sshd (a private one on loopback, see
bench/_sshd.py) spawning ``python3 -q -i`` for ``ssh -tt host python3 -q -i``, measured
the same way; the target is under 60 ms and under 0.3x that. For information, the same ssh
login to the manhole running the cheapest exec (``None``): the SSH handshake and
authentication alone.
"""

from __future__ import annotations

import subprocess
import time

from bench._harness import Host, Row, keys, median_ms, seconds_to_prompt, ssh_argv
from bench._sshd import NOT_INSTALLED, private_sshd

RUNS = 20


def measure() -> list[Row]:
    prompt_times: list[float] = []
    handshake_times: list[float] = []
    sshd_times: list[float] = []
    with keys() as bench_keys, private_sshd(bench_keys.authorized_keys) as sshd:
        host = Host(bench_keys)
        try:
            ours = ssh_argv(host.port, bench_keys.client_key, "-tt", "127.0.0.1")
            exec_none = ssh_argv(host.port, bench_keys.client_key, "127.0.0.1", "None")
            theirs = None
            if sshd is not None:
                theirs = ssh_argv(sshd.port, bench_keys.client_key, "-tt", "127.0.0.1")
                theirs.append("python3 -q -i")
                seconds_to_prompt(theirs)
            seconds_to_prompt(ours)  # the first connection imports asyncssh and ptpython
            for _ in range(RUNS):
                prompt_times.append(seconds_to_prompt(ours))
                started = time.perf_counter()
                subprocess.run(exec_none, check=True)
                handshake_times.append(time.perf_counter() - started)
                if theirs is not None:
                    sshd_times.append(seconds_to_prompt(theirs))
        finally:
            host.close()
    prompt, handshake = median_ms(prompt_times), median_ms(handshake_times)
    met: bool | None = prompt < 60
    if sshd_times:
        ratio = prompt / median_ms(sshd_times)
        ours_cell = f"{prompt:.1f} ms ({ratio:.2f}x sshd)"
        baseline = f"{median_ms(sshd_times):.1f} ms sshd + python3 -q -i"
        met = met and ratio < 0.3
    else:
        ours_cell, baseline = f"{prompt:.1f} ms", NOT_INSTALLED
        met = None if met else False
    return [
        Row(
            "connect-to-prompt (median of 20)",
            ours_cell,
            f"{baseline}; {handshake:.1f} ms ssh exec 'None'",
            "< 60 ms and < 0.3x sshd",
            met,
        )
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
