"""Scale: 25, then 100 concurrent terminal sessions (one connection each) to one host, each
evaluating ``N+1000000⏎`` once a second for 30 s; every eval timed from its send until the
result arrives. Reports how many of the evals were answered, their p99 (and median),
and the host's RSS with the 100 sessions open, less its RSS before them (after one
session had come and gone, so the first connection's imports are not counted), per
session.

The clients are real ``ssh -tt`` processes in PTYs, read by one asyncio loop here that
answers ESC[6n and looks for the result in the raw output (no terminal emulator: 100 of
them in Python would need more CPU than this 2-core machine has beside the host). The
sessions' evals are spread evenly over each second, and connections are opened three at a
time (the default ``per_source_max_startups``). The host's CPU over the 30 s is shown too:
the manhole runs on one core at most (its thread and the session workers share the GIL).

Baseline, same run, same host and client: one session alone evaluating 50 times, 0.1 s
apart (median and p99).

What each open terminal session costs the host's garbage collector is shown too: the
objects it tracks per session, and how much longer one full collection (``gc.collect()``,
asked of the host) takes per open session, both against the host before the sessions.

The host's full garbage collections during the 30 s are shown too: the sessions' objects
(ptpython's layout, prompt_toolkit's caches) live in the host's heap, and CPython stops
every thread while it walks that heap. A second row, a diagnostic, runs the same with the
bench host's cyclic garbage collector off, to tell the collector's pauses from the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import pexpect

from bench._harness import Host, Keys, Row, keys, median_ms, p99_ms, rss_kb, ssh_argv

SESSIONS = 100  # the most: all answered, < 3 MB each
FEW_SESSIONS = 25  # a busy day: p99 < 50 ms
DURATION = 30  # evals per session, one a second
BASELINE_EVALS = 50
TIMEOUT = 10.0
CPR = b"\x1b[6n"
COLUMNS, ROWS = 100, 30


class _Session:
    """``ssh -tt`` to the host in a PTY; the output since the last send, answering
    cursor-position requests as a terminal does (the cursor said to be on the last row)."""

    def __init__(self, port: int, bench_keys: Keys) -> None:
        argv = ssh_argv(port, bench_keys.client_key, "-tt", "127.0.0.1")
        self.child = pexpect.spawn(
            argv[0], argv[1:], dimensions=(ROWS, COLUMNS), env={**os.environ, "TERM": "xterm"}
        )
        self.fd = self.child.child_fd
        os.set_blocking(self.fd, False)
        self.text = b""
        self.tail = b""
        self.ended = False
        self.arrived = 0.0
        self.changed = asyncio.Event()
        self.latencies: list[float] = []
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.fd)
            self.ended = True
        elif CPR in self.tail + data:
            os.write(self.fd, f"\x1b[{ROWS};1R".encode())
        self.arrived = time.perf_counter()
        self.tail = data[-len(CPR) :]
        self.text += data
        self.changed.set()

    async def until(self, text: bytes) -> float:
        """Wait until ``text`` has arrived since the last send; when it did."""
        deadline = time.monotonic() + TIMEOUT
        while text not in self.text:
            if self.ended:
                raise EOFError("the session ended")
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
        return self.arrived

    async def evaluate(self, number: int) -> None:
        result = str(number + 1000000).encode()  # number >= 1: not in the echoed input
        self.text = b""
        started = time.perf_counter()
        os.write(self.fd, f"{number}+1000000\r".encode())
        self.latencies.append(await self.until(result) - started)
        self.text = self.text[self.text.index(result) :]
        await self.until(b">>>")  # the next prompt, before the next eval

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        self.child.close(force=True)


async def _open(port: int, bench_keys: Keys, gate: asyncio.Semaphore) -> _Session:
    async with gate:
        session = _Session(port, bench_keys)
        try:
            # The prompt's second drawing, with the status bar: the session is ready.
            await session.until(b"[F4]")
        except BaseException:
            session.close()
            raise
        return session


async def _run(session: _Session, first: int, start: float, period: float, count: int) -> int:
    """Evaluate ``count`` times, ``period`` apart from ``start``; the evals answered."""
    answered = 0
    for number in range(first, first + count):
        await asyncio.sleep(max(0.0, start + (number - first) * period - time.monotonic()))
        try:
            await session.evaluate(number)
        except (TimeoutError, EOFError, OSError):
            continue
        answered += 1
    return answered


@dataclass
class _Figures:
    latencies: list[float]  # every eval's, s
    answered: int
    alone: list[float]  # the lone session's latencies, s
    per_session: float  # RSS growth per session, MB
    cpu: float  # the host's CPU during the evals, % of a core
    full_collections: int  # the host's, during the evals
    longest_collection: float  # ms
    tracked_objects: int  # by the host's garbage collector, with the sessions open
    sessions: int
    objects_per_session: float  # GC-tracked objects each open session adds
    collection_per_session: float  # ms one full collection takes longer per open session
    load: str  # the machine's load average during the run

    def describe(self) -> str:
        p99, median = p99_ms(self.latencies), median_ms(self.latencies)
        return (
            f"{self.answered}/{self.sessions * DURATION} answered; p99 {p99:.1f} ms (median "
            f"{median:.1f}); {self.per_session:.2f} MB RSS/session; host CPU {self.cpu:.0f} % "
            f"of a core; {self.full_collections} full GCs, longest "
            f"{self.longest_collection:.0f} ms, {self.tracked_objects // 1000}k objects; "
            f"per session {self.objects_per_session / 1000:.1f}k GC objects, "
            f"+{self.collection_per_session:.2f} ms per full collection; load {self.load}"
        )


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


async def _measure(host: Host, bench_keys: Keys, count: int) -> _Figures:
    gate = asyncio.Semaphore(3)
    alone = await _open(host.port, bench_keys, gate)
    try:
        await _run(alone, 1, time.monotonic(), 0.1, BASELINE_EVALS)
    finally:
        alone.close()
    host.settle()
    collection_before, objects_before = host.ask("COLLECT")
    before = rss_kb(host.pid)
    opening = [asyncio.ensure_future(_open(host.port, bench_keys, gate)) for _ in range(count)]
    try:
        sessions = await asyncio.gather(*opening)
        host.settle()
        collection_open, objects_open = host.ask("COLLECT")
        cpu = host.cpu_ms()
        host.ask("GC")  # from now on
        start = time.monotonic() + 0.5
        answered = await asyncio.gather(
            *(
                _run(session, 1 + index * 1000, start + index / count, 1.0, DURATION)
                for index, session in enumerate(sessions)
            )
        )
        cpu = (host.cpu_ms() - cpu) / (time.monotonic() - start) / 10  # per cent of a core
        collections, longest_ns, _, objects = host.ask("GC")
        growth = (rss_kb(host.pid) - before) / 1024 / count
    finally:
        for task in opening:
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
            else:
                task.cancel()
    return _Figures(
        latencies=[sample for session in sessions for sample in session.latencies],
        answered=sum(answered),
        alone=alone.latencies,
        per_session=growth,
        cpu=cpu,
        full_collections=collections,
        longest_collection=longest_ns / 1e6,
        tracked_objects=objects,
        sessions=count,
        objects_per_session=(objects_open - objects_before) / count,
        collection_per_session=(collection_open - collection_before) / 1e6 / count,
        load=_load(),
    )


def _run_host(bench_keys: Keys, count: int, *options: str) -> _Figures:
    # Every session logs in with the one bench key: let them all (the default caps are
    # 10 per key and 50 in all).
    host = Host(bench_keys, "--connections", str(count + 1), *options)
    try:
        return asyncio.run(_measure(host, bench_keys, count))
    finally:
        host.close()


def measure() -> list[Row]:
    with keys() as bench_keys:
        few = _run_host(bench_keys, FEW_SESSIONS)
        figures = _run_host(bench_keys, SESSIONS)
        without_gc = _run_host(bench_keys, SESSIONS, "--no-gc")
    return [
        Row(
            f"scale: {FEW_SESSIONS} sessions, an eval a second each for {DURATION} s",
            few.describe(),
            f"1 session: p99 {p99_ms(few.alone):.1f} ms (median {median_ms(few.alone):.1f})",
            "p99 < 50 ms",
            p99_ms(few.latencies) < 50,
        ),
        Row(
            f"scale: {SESSIONS} sessions, an eval a second each for {DURATION} s",
            figures.describe(),
            f"1 session: p99 {p99_ms(figures.alone):.1f} ms "
            f"(median {median_ms(figures.alone):.1f})",
            "all answered; < 3 MB/session",
            figures.answered == SESSIONS * DURATION and figures.per_session < 3,
        ),
        Row(
            "scale, diagnostic: the same, host's cyclic GC off",
            without_gc.describe(),
            "-",
            "- (what the collector's pauses cost)",
            None,
        ),
    ]


if __name__ == "__main__":
    from bench._harness import print_rows

    print_rows(measure())
