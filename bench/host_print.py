"""Host print: what a ``print()`` of the host's own costs once the manhole routes
``sys.stdout`` (after the first connection, ``sys.stdout`` is a ``ThreadRoutedStream``,
which asks, at each write, whether the code runs for a session: its worker thread, then
its context variable).

Baseline, same run and same process: the same ``print()`` to the stream underneath
(``/dev/null``). Rounds alternate the two, 20,000 prints each, best of 3; the figure is the
median over the rounds. Target: at most 3 µs added per print (a host printing 1,000 lines
a second pays at most 0.3 % of a core).
"""

from __future__ import annotations

import statistics
import timeit

from bench._harness import Row
from manhole_ssh.session.streams import ThreadRoutedStream

ROUNDS = 15
PRINTS = 20_000
TARGET_ADDED_NS = 3000


def _per_print_ns(stream: object) -> float:
    best = min(
        timeit.repeat(lambda: print("host line 1234567890", file=stream), number=PRINTS, repeat=3)
    )
    return best / PRINTS * 1e9


def measure() -> list[Row]:
    with open("/dev/null", "w") as sink:
        routed = ThreadRoutedStream("stdout", sink)
        plain, through = [], []
        for _ in range(ROUNDS):
            plain.append(_per_print_ns(sink))
            through.append(_per_print_ns(routed))
    ours, baseline = statistics.median(through), statistics.median(plain)
    return [
        Row(
            "host print() through the routing (ns)",
            f"{ours:.0f} ({ours / baseline:.1f}x)",
            f"{baseline:.0f} (the stream itself)",
            f"<= {TARGET_ADDED_NS} added",
            ours - baseline <= TARGET_ADDED_NS,
        )
    ]
