"""A host for the benchmarks: a service with a manhole on a free port (or none).

Usage: python host.py AUTHORIZED_KEYS HOST_KEY [--no-manhole] [--busy]

Prints ``PORT <n>`` (0 without a manhole), then runs until killed. ``--busy`` runs a
CPU-bound thread that counts its loops into ``work['loops']``.
"""

from __future__ import annotations

import sys
import threading
import time

work = {"loops": 0}


def busy() -> None:
    while True:
        work["loops"] += 1


def main() -> None:
    authorized_keys, host_key, *options = sys.argv[1:]
    if "--busy" in options:
        threading.Thread(target=busy, name="busy", daemon=True).start()
    port = 0
    if "--no-manhole" not in options:
        import manhole_ssh

        port = manhole_ssh.install(
            port=0, authorized_keys=authorized_keys, host_key=host_key, locals={"work": work}
        ).port
    print(f"PORT {port}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
