"""Run every benchmark and print one table."""

from __future__ import annotations

import os

from bench import (
    breakpoint_cost,
    connect_to_prompt,
    eval_round_trip,
    exec_round_trip,
    green_stall,
    host_impact,
    host_print,
    idle_cost,
    isolation,
    peer,
    profiler_cost,
    scale,
    throughput,
    unused_cost,
)
from bench._harness import print_rows


def main() -> None:
    load_before = os.getloadavg()[0]
    rows = []
    for module in (
        connect_to_prompt,
        eval_round_trip,
        exec_round_trip,
        throughput,
        unused_cost,
        idle_cost,
        host_impact,
        host_print,
        profiler_cost,
        scale,
        isolation,
        peer,
        green_stall,
        breakpoint_cost,
    ):
        print(f"running {module.__name__} …", flush=True)
        rows += module.measure()
    print()
    print_rows(rows)
    # Other work on the machine shows in every figure: say how busy it was.
    print(
        f"\n{os.cpu_count()} cores; 1-minute load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )


main()
