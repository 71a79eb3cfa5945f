"""A host for the benchmarks: a service with a manhole on a free port (or none).

Usage: python host.py AUTHORIZED_KEYS HOST_KEY [--no-manhole] [--busy] [--loop]
       [--python-manhole SOCKET] [--no-gc] [--connections N]

Prints ``PORT <n>`` (0 without a manhole of ours), then answers requests on stdin, one
line each, until stdin closes:

- ``CPU``: ``<process CPU ns>``, all threads, living and ended;
- ``LOOPS``: ``<loops> <perf_counter ns> <process CPU ns> <busy thread CPU ns> <busy
  thread run-queue wait ns>`` (the last: time it was ready to run but another process
  had the CPU, from /proc's schedstat);
- ``GC``: ``<full collections> <longest ns> <all of them ns> <GC-tracked objects>``: the
  cyclic garbage collector's full (generation 2) collections since the last ``GC``
  request (or the start), seen through ``gc.callbacks``, and the objects it tracks now;
- ``COLLECT``: ``<ns> <GC-tracked objects>``: the time of one full collection run now
  (``gc.collect()``, the median of three), and the objects tracked after it.

``--busy`` runs a CPU-bound thread that counts its loops into ``work['loops']``.
``--loop`` runs an idle asyncio loop in a thread ``loop``, given to the manhole.
``--python-manhole SOCKET`` installs python-manhole (PyPI ``manhole``) listening on the
Unix socket SOCKET instead of manhole-ssh.

``--connections N`` lets N connections log in at once, all with the one bench key
(``max_connections`` and ``max_connections_per_key``; the defaults are 50 and 10).

``--no-gc`` turns the cyclic garbage collector off (a diagnostic: what the figures are
without its pauses; a service would not run so).

Replies go straight to file descriptor 1: python-manhole points ``sys.stdout`` of the whole
process at its client while one is connected.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time

work = {"loops": 0}
full_collections: list[int] = []  # each full collection's duration, ns
_collection_started = [0]


def _time_full_collections(phase: str, info: dict[str, int]) -> None:
    if info["generation"] == 2:
        if phase == "start":
            _collection_started[0] = time.perf_counter_ns()
        else:
            full_collections.append(time.perf_counter_ns() - _collection_started[0])


def busy() -> None:
    while True:
        work["loops"] += 1


def _reply(text: str) -> None:
    os.write(1, f"{text}\n".encode())


def main() -> None:
    authorized_keys, host_key, *options = sys.argv[1:]
    busy_clock, busy_schedstat = None, None
    if "--busy" in options:
        worker = threading.Thread(target=busy, name="busy", daemon=True)
        worker.start()
        assert worker.ident is not None and worker.native_id is not None
        busy_clock = time.pthread_getcpuclockid(worker.ident)
        busy_schedstat = f"/proc/self/task/{worker.native_id}/schedstat"
    loop = None
    if "--loop" in options:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="loop", daemon=True).start()
    gc.callbacks.append(_time_full_collections)
    if "--no-gc" in options:
        gc.disable()
    port = 0
    if "--python-manhole" in options:
        import manhole

        socket_path = options[options.index("--python-manhole") + 1]
        manhole.install(
            socket_path=socket_path, verbose=False, patch_fork=False, locals={"work": work}
        )
    elif "--no-manhole" not in options:
        import manhole_ssh

        connections = {}
        if "--connections" in options:
            count = int(options[options.index("--connections") + 1])
            connections = {"max_connections": count, "max_connections_per_key": count}
        port = manhole_ssh.install(
            **connections,
            port=0,
            authorized_keys=authorized_keys,
            host_key=host_key,
            locals={"work": work},
            loop=loop,
        ).port
    _reply(f"PORT {port}")
    with open(0, closefd=False) as requests:
        for request in requests:
            if request.strip() == "CPU":
                _reply(str(time.process_time_ns()))
            elif request.strip() == "LOOPS":
                loops, now, cpu = work["loops"], time.perf_counter_ns(), time.process_time_ns()
                busy_ns = waited_ns = 0
                if busy_clock is not None and busy_schedstat is not None:
                    busy_ns = time.clock_gettime_ns(busy_clock)
                    with open(busy_schedstat) as schedstat:
                        waited_ns = int(schedstat.read().split()[1])
                _reply(f"{loops} {now} {cpu} {busy_ns} {waited_ns}")
            elif request.strip() == "GC":
                durations = full_collections[:]
                del full_collections[: len(durations)]
                longest = max(durations, default=0)
                _reply(f"{len(durations)} {longest} {sum(durations)} {len(gc.get_objects())}")
            elif request.strip() == "COLLECT":
                runs = []
                for _ in range(3):
                    started = time.perf_counter_ns()
                    gc.collect()
                    runs.append(time.perf_counter_ns() - started)
                del full_collections[:]  # these are ours, not the sessions'
                _reply(f"{sorted(runs)[1]} {len(gc.get_objects())}")
            else:
                _reply(f"ERROR unknown request {request.strip()!r}")


if __name__ == "__main__":
    main()
