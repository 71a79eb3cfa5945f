"""Admission control: who may connect and stay, apart from who they are.

Crowding (sshd's MaxStartups with its random early drop, PerSourceMaxStartups), penalties
for sources that keep failing (PerSourcePenalties), and the caps on logged-in connections
(overall and per key) that sshd does not need. Authentication (is this key allowed?) is
:class:`~manhole_ssh.server.ssh_server.ManholeServer`'s job; this class decides only
whether a connection may try, and whether a good login still fits.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
from collections.abc import Iterable
from typing import Any, Protocol

from ..access.peer_uid import loopback_peer_uid
from ..access.penalties import SourceGrouping, SourcePenalties
from ..audit import report_event
from ..config import Limits
from .listeners import peer_credentials

__all__ = ["Admission", "Admitted", "unix_peer"]

log = logging.getLogger("manhole_ssh.server")


class Admitted(Protocol):
    """What admission reads of an open connection."""

    @property
    def authenticated(self) -> bool: ...
    @property
    def fingerprint(self) -> str | None: ...

    source: str


class Admission:
    """The admission rules of one manhole, over its open connections."""

    def __init__(self, limits: Limits, connections: Iterable[Admitted]) -> None:
        self.limits = limits
        self._connections = connections  # the live set of open connections
        self.penalties = SourcePenalties()
        ipv4_bits, ipv6_bits = limits.net_block_sizes()
        self.grouping = SourceGrouping(ipv4_bits, ipv6_bits, limits.exempt_networks())

    def source_of(self, peer: tuple[Any, ...], ours: object) -> str:
        """Who to hold to account. On loopback, every local user shares 127.0.0.1: a
        client whose socket belongs to another local user is counted as that user, so
        that no account can lock out another, nor dodge penalties by changing address.
        This process's own user and root, who can do anything to the process anyway,
        and remote clients, are counted by address (its netblock), as sshd does."""
        if isinstance(ours, tuple) and len(ours) >= 2:
            uid = loopback_peer_uid((str(peer[0]), int(peer[1])), (str(ours[0]), int(ours[1])))
            if uid is not None and uid not in (os.geteuid(), 0):
                return f"uid {uid} on loopback"
        return self.grouping.source(str(peer[0]))

    def refusal_at_connect(self, source: str) -> str | None:
        """Why a new connection from ``source`` is dropped before any SSH, or ``None``."""
        return self._penalty_refusal(source) or self._crowd_refusal(source)

    def _penalty_refusal(self, source: str) -> str | None:
        remaining = self.penalties.remaining(source)
        if remaining <= 0:
            return None
        return f"{source} is penalized for {math.ceil(remaining)} s more (repeated failures)"

    def _crowd_refusal(self, source: str) -> str | None:
        """sshd's MaxStartups (with its random early drop) and PerSourceMaxStartups."""
        limits = self.limits
        waiting = self.unauthenticated_from(None)
        start, rate, full = limits.startup_rule()
        if waiting >= start:
            chance = 100
            if waiting < full:  # rises linearly from rate at start to 100 at full, as in sshd
                chance = rate + (100 - rate) * (waiting - start) // (full - start)
            if random.randrange(100) < chance:
                how = "" if chance == 100 else f", dropped at random ({chance}% now)"
                return (
                    f"{waiting} unauthenticated connections already "
                    f"(max_startups {limits.max_startups}{how})"
                )
        if self.unauthenticated_from(source) >= limits.per_source_max_startups:
            return (
                f"{limits.per_source_max_startups} unauthenticated connections from "
                f"{source} already (per_source_max_startups)"
            )
        return None

    def strike(self, source: str, address: str, offense: str, weight: float = 1.0) -> None:
        """Count ``offense`` against ``source``; penalize it once it has earned that."""
        if source in ("unix", "unknown"):
            return  # the same user (see unix_peer), or no address to hold to account
        if self.grouping.is_exempt(address):
            return
        penalty = self.penalties.strike(source, weight=weight)
        if penalty:
            report_event(
                log,
                logging.WARNING,
                "penalty",
                "%s penalized for %.0f s: %s",
                source,
                penalty,
                offense,
                source=source,
                seconds=penalty,
                offense=offense,
            )

    def refusal_at_login(self, fingerprint: str) -> str | None:
        """sshd has no such caps (it forks a process per connection, and its host is
        the machine, not a service's process): logged-in connections each hold a
        descriptor and buffers in the host, so they are capped overall and per key."""
        limits = self.limits
        if self.logged_in_with(None) >= limits.max_connections:
            return f"{limits.max_connections} connections are logged in already (max_connections)"
        if self.logged_in_with(fingerprint) >= limits.max_connections_per_key:
            return (
                f"{limits.max_connections_per_key} connections are logged in with this key "
                "already (max_connections_per_key)"
            )
        return None

    def unauthenticated_from(self, source: str | None) -> int:
        """How many connections (from ``source``, or from anywhere) are not logged in yet."""
        return sum(
            1
            for connection in self._connections
            if not connection.authenticated and (source is None or connection.source == source)
        )

    def logged_in_with(self, fingerprint: str | None) -> int:
        """How many connections are logged in (with that key, or with any)."""
        return sum(
            1
            for connection in self._connections
            if connection.authenticated
            and (fingerprint is None or connection.fingerprint == fingerprint)
        )


def unix_peer(sock: socket.socket | None) -> tuple[str, str | None] | None:
    """On a Unix socket, who is connecting is known before any SSH is spoken: only this
    process's user and root may go on to authenticate. ``None`` for a TCP connection;
    else how to name the peer, and why it is refused (``None``: it may go on)."""
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    pid, uid, _ = peer_credentials(sock)
    peer = f"unix socket, pid {pid} uid {uid}"
    if uid in (os.geteuid(), 0):
        return peer, None
    return peer, f"uid {uid} is neither this process's user ({os.geteuid()}) nor root"
