"""Per-source penalties: when they start, how they grow, and what they forget."""

from __future__ import annotations

from manhole_ssh.penalties import SourcePenalties


def test_penalty_starts_after_the_allowed_strikes_and_doubles() -> None:
    penalties = SourcePenalties(strikes_allowed=3, first_penalty=5.0, max_penalty=30.0)
    assert [penalties.strike("10.0.0.1", now=100.0) for _ in range(2)] == [0.0, 0.0]
    assert penalties.strike("10.0.0.1", now=100.0) == 5.0
    assert penalties.remaining("10.0.0.1", now=102.0) == 3.0
    assert penalties.strike("10.0.0.1", now=103.0) == 10.0
    assert penalties.strike("10.0.0.1", now=104.0) == 20.0
    assert penalties.strike("10.0.0.1", now=105.0) == 30.0  # capped
    assert penalties.remaining("10.0.0.2", now=105.0) == 0.0  # others are not affected
    assert penalties.remaining("10.0.0.1", now=200.0) == 0.0


def test_quiet_sources_are_forgotten() -> None:
    penalties = SourcePenalties(strikes_allowed=1, first_penalty=1.0, memory=60.0)
    for number in range(2000):
        penalties.strike(f"10.0.{number // 256}.{number % 256}", now=0.0)
    penalties.strike("10.9.9.9", now=1000.0)
    assert len(penalties._records) < 1100
