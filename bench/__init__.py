"""Benchmarks: one module per figure, each measured beside a baseline in the same run.

``python -m bench`` (or ``make bench``) runs them all and prints one table;
``python -m bench.eval_round_trip`` runs one.
"""
