"""Cost when unused: a small service (logging, socket, threading imported) with and
without ``import manhole_ssh; manhole_ssh.install()``, each in a fresh process; and the
same for a service that also imports ``pathlib`` and ``typing``, as most do.

The package is byte-compiled first, as ``pip install`` leaves it: from source (an
editable install with PYTHONDONTWRITEBYTECODE set), the compiler's own allocations would
add about 1 MB and 4 ms that no installed copy pays.

Reports RSS growth and the time spent importing and in ``install()``; for information, the
growth after the first connection (when asyncssh and ptpython are imported).
"""

from __future__ import annotations

import compileall
import json
import statistics
import subprocess
import sys
from pathlib import Path

import manhole_ssh
from bench._harness import Row, keys

RUNS = 5
PROBE = """
import json, logging, socket, sys, threading, time
if sys.argv[-1] == "modern":
    import pathlib, typing
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 // 1024
before = rss()
result = {"import_ms": 0.0, "install_ms": 0.0}
if sys.argv[1] == "install":
    started = time.perf_counter()
    import manhole_ssh
    result["import_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    manhole = manhole_ssh.install(port=0, authorized_keys=sys.argv[2], host_key=sys.argv[3])
    result["install_ms"] = (time.perf_counter() - started) * 1000
    time.sleep(0.2)
result["rss_kb"] = rss() - before
if sys.argv[1] == "install":
    import subprocess
    subprocess.run(["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                    "-o", "LogLevel=ERROR", "-i", sys.argv[4], "-p", str(manhole.port),
                    "127.0.0.1", "None"], check=True)
    result["after_first_connection_kb"] = rss() - before
print(json.dumps(result))
"""


def _probe(*arguments: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", PROBE, *arguments], check=True, capture_output=True, text=True
    ).stdout
    loaded: dict[str, float] = json.loads(output)
    return loaded


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def measure() -> list[Row]:
    compileall.compile_dir(Path(manhole_ssh.__file__).parent, quiet=1)
    rows = []
    with keys() as bench_keys:
        paths = [str(bench_keys.authorized_keys), str(bench_keys.host_key)]
        paths.append(str(bench_keys.client_key))
        for kind, label in (("small", "small service"), ("modern", "+ pathlib, typing")):
            with_manhole = [_probe("install", *paths, kind) for _ in range(RUNS)]
            without = [_probe("plain", kind) for _ in range(RUNS)]
            growth = (_median(with_manhole, "rss_kb") - _median(without, "rss_kb")) / 1024
            rows.append(
                Row(
                    f"cost when unused: RSS ({label})",
                    f"+{growth:.2f} MB",
                    "same service without install()",
                    "< 2 MB (issue 5), < 5 MB (issue 2)",
                    growth < 2,
                )
            )
    install_ms = _median(with_manhole, "install_ms")
    import_ms = _median(with_manhole, "import_ms")
    connected = _median(with_manhole, "after_first_connection_kb") / 1024
    rows += [
        Row(
            "cost when unused: time in install()",
            f"{install_ms:.2f} ms (+ {import_ms:.1f} ms import)",
            "0",
            "< 5 ms",
            install_ms < 5,
        ),
        Row("after the first connection (information)", f"+{connected:.1f} MB RSS", "-", "-", None),
    ]
    return rows


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
