"""Per-source penalties, after OpenSSH 9.8's PerSourcePenalties.

A source earns a strike for each connection that ends without logging in after refused
keys or cut at login_grace_time, and a tenth of one for a connection that leaves without
trying a key (a port scan, a health check, ``ssh-keyscan``: as sshd's "noauth" penalty is
a fifth of its "authfail" one). A connection refused because the server is crowded
(max_startups, per_source_max_startups, the caps on logged-in connections) earns nothing:
the crowd is not that source's doing, and striking it would let a flood from elsewhere
lock out whoever happens to connect meanwhile.

From ``strikes_allowed`` strikes within the last ``memory`` seconds on, the source is
refused at once for a time that starts at ``first_penalty`` and doubles with each further
strike in that window, up to ``max_penalty``. Strikes older than ``memory`` no longer
count. Other sources are not affected: a good key from elsewhere still gets in at once.

What a "source" is belongs to :class:`SourceGrouping`: an address's netblock (sshd's
PerSourceNetBlockSize), or on loopback the local user who owns the client's socket (see
:mod:`.peeruid`).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable

from ..boundedlog import BoundedLog

__all__ = ["NO_KEY_TRIED", "SourceGrouping", "SourcePenalties"]

log = logging.getLogger("manhole_ssh.server")

# Sources remembered at most (sshd's max-sources4/6 is 65,536, for a whole sshd; this is
# a guest in someone's process: about 300 bytes a source, 1.2 MB at most). Past it, new
# sources are not tracked (sshd's "permissive" overflow): a flood from many addresses must
# not grow the host's memory without bound, and refusing everyone would lock the admin out.
MAX_SOURCES = 4096
_FORGET_FROM = 1024  # from this many sources on, forget the quiet ones at each new one
_MAX_STRIKES_KEPT = 64  # only the count within `memory` matters; older ones are dropped
NO_KEY_TRIED = 0.1  # the weight of a connection that left without trying a key


class SourcePenalties:
    """Strikes and penalties per source (a string from :class:`SourceGrouping`).

    :param clock: where "now" comes from (a test passes its own); ``now=`` on a call
        overrides it.
    """

    def __init__(
        self,
        *,
        strikes_allowed: int = 3,
        first_penalty: float = 5.0,
        max_penalty: float = 600.0,
        memory: float = 60.0,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.strikes_allowed = strikes_allowed
        self.first_penalty = first_penalty
        self.max_penalty = max_penalty
        self.memory = memory
        self.max_sources = max_sources
        self._clock = clock
        self._overflow = BoundedLog(log, logging.WARNING, 60.0, clock)
        self._strikes: dict[str, list[tuple[float, float]]] = {}  # (when, weight)
        self._penalized_until: dict[str, float] = {}

    def strike(self, source: str, now: float | None = None, weight: float = 1.0) -> float:
        """Record an offense from ``source`` (``weight``: how much of a strike it is); the
        penalty now in force (0: none yet)."""
        now = self._clock() if now is None else now
        strikes = self._strikes.get(source)
        if strikes is None:
            if len(self._strikes) >= min(_FORGET_FROM, self.max_sources):
                self._forget_old(now)
            if len(self._strikes) >= self.max_sources:
                self._overflow.note(
                    f"penalties: {len(self._strikes)} sources tracked already; "
                    f"{source} and other new ones are not, until old ones are forgotten"
                )
                return 0.0
            strikes = self._strikes[source] = []
        strikes.append((now, weight))
        strikes[:] = [
            strike for strike in strikes[-_MAX_STRIKES_KEPT:] if now - strike[0] <= self.memory
        ]
        excess = sum(weight for _, weight in strikes) - self.strikes_allowed + 1e-9
        if excess < 0:
            return 0.0
        penalty = min(self.max_penalty, self.first_penalty * 2 ** int(excess))
        self._penalized_until[source] = max(self._penalized_until.get(source, 0.0), now + penalty)
        return penalty

    def remaining(self, source: str, now: float | None = None) -> float:
        """Seconds ``source`` is still refused for (0: it may connect)."""
        now = self._clock() if now is None else now
        return max(0.0, self._penalized_until.get(source, now) - now)

    def __len__(self) -> int:
        """How many sources are remembered."""
        return len(self._strikes)

    def _forget_old(self, now: float) -> None:
        """Drop sources with no strike in ``memory`` seconds and no penalty in force."""
        stale = [
            source
            for source, strikes in self._strikes.items()
            if (not strikes or now - strikes[-1][0] > self.memory)
            and now >= self._penalized_until.get(source, 0.0)
        ]
        for source in stale:
            del self._strikes[source]
            self._penalized_until.pop(source, None)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR blocks (``10.0.0.0/8``, ``::1``); :class:`ValueError` names a bad one."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def unmapped(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` as an IP address, an IPv4-mapped IPv6 one as IPv4; ``None`` if it is none."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class SourceGrouping:
    """Which addresses count as one source for penalties and per_source_max_startups.

    :param ipv4_bits: bits of an IPv4 address that name its source (sshd's
        PerSourceNetBlockSize, 32 by default: each address on its own).
    :param ipv6_bits: the same for IPv6 (128 by default).
    :param exempt: networks never penalized (sshd's PerSourcePenaltyExemptList).
    """

    def __init__(self, ipv4_bits: int = 32, ipv6_bits: int = 128, exempt: Iterable[str] = ()):
        self.ipv4_bits = ipv4_bits
        self.ipv6_bits = ipv6_bits
        self.exempt = parse_networks(exempt)

    def source(self, address: str) -> str:
        """The netblock ``address`` belongs to, as text (the address itself at /32, /128)."""
        ip = unmapped(address)
        if ip is None:
            return address
        bits = self.ipv4_bits if ip.version == 4 else self.ipv6_bits
        if bits == ip.max_prefixlen:
            return str(ip)
        return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))

    def is_exempt(self, address: str) -> bool:
        ip = unmapped(address)
        return ip is not None and any(ip in network for network in self.exempt)
