"""Run every benchmark and print one table."""

from __future__ import annotations

from bench import (
    connect_to_prompt,
    eval_round_trip,
    exec_round_trip,
    idle_cost,
    throughput,
    unused_cost,
)
from bench._harness import print_rows


def main() -> None:
    rows = []
    for module in (
        connect_to_prompt,
        eval_round_trip,
        exec_round_trip,
        throughput,
        unused_cost,
        idle_cost,
    ):
        print(f"running {module.__name__} …", flush=True)
        rows += module.measure()
    print()
    print_rows(rows)


main()
