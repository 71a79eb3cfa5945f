"""Per-source penalties, after OpenSSH 9.8's PerSourcePenalties.

A source address earns a strike for each connection that ends without logging in after
refused keys, and for each connection dropped because it already held too many
unauthenticated ones. From ``strikes_allowed`` strikes within ``memory`` seconds on, it is
refused at once for a time that starts at ``first_penalty`` and doubles with each further
strike, up to ``max_penalty``. Other sources are not affected: a good key from elsewhere
still gets in at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["SourcePenalties"]


@dataclass
class _Record:
    strikes: int = 0
    last_strike: float = 0.0
    penalized_until: float = 0.0


class SourcePenalties:
    def __init__(
        self,
        *,
        strikes_allowed: int = 3,
        first_penalty: float = 5.0,
        max_penalty: float = 600.0,
        memory: float = 60.0,
    ) -> None:
        self.strikes_allowed = strikes_allowed
        self.first_penalty = first_penalty
        self.max_penalty = max_penalty
        self.memory = memory
        self._records: dict[str, _Record] = {}

    def strike(self, source: str, now: float | None = None) -> float:
        """Record an offense from ``source``; the penalty now in force (0: none yet)."""
        now = time.monotonic() if now is None else now
        if len(self._records) > 1024:
            self._forget_old(now)
        record = self._records.setdefault(source, _Record())
        record.strikes += 1
        record.last_strike = now
        excess = record.strikes - self.strikes_allowed
        if excess < 0:
            return 0.0
        penalty = min(self.max_penalty, self.first_penalty * 2**excess)
        record.penalized_until = max(record.penalized_until, now + penalty)
        return penalty

    def remaining(self, source: str, now: float | None = None) -> float:
        """Seconds ``source`` is still refused for (0: it may connect)."""
        now = time.monotonic() if now is None else now
        record = self._records.get(source)
        return max(0.0, record.penalized_until - now) if record is not None else 0.0

    def _forget_old(self, now: float) -> None:
        """Drop sources quiet for ``memory`` seconds and no longer penalized (bounded memory
        even under a flood from many addresses)."""
        stale = [
            source
            for source, record in self._records.items()
            if now - record.last_strike > self.memory and now >= record.penalized_until
        ]
        for source in stale:
            del self._records[source]
