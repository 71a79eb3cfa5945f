"""Per-source penalties: when they start, how they grow, what they forget, and what counts
as one source (netblocks, the exempt list, the local user on loopback)."""

from __future__ import annotations

import os
import socket

import pytest
from conftest import socket_of_user

from manhole_ssh.access import peer_uid as peeruid
from manhole_ssh.access.peer_uid import loopback_peer_uid
from manhole_ssh.access.penalties import NO_KEY_TRIED, SourceGrouping, SourcePenalties, unmapped
from manhole_ssh.config import ConfigError, Limits, environment_options


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


def test_three_strikes_in_a_minute_and_not_more_slowly() -> None:
    """The docs' "3 failed connections in a minute": strikes older than a minute no longer
    count, so a source failing now and then is never penalized."""
    clock = Clock()
    penalties = SourcePenalties(clock=clock)
    for _ in range(10):  # one failure every 31 s: at most two in any minute
        assert penalties.strike("10.0.0.1") == 0.0
        clock.now += 31
    assert penalties.remaining("10.0.0.1") == 0.0
    assert penalties.strike("10.0.0.2") == 0.0
    clock.now += 30
    assert penalties.strike("10.0.0.2") == 0.0
    clock.now += 29.9  # the third within 60 s
    assert penalties.strike("10.0.0.2") == 5.0
    assert penalties.remaining("10.0.0.2") == 5.0
    clock.now += 5
    assert penalties.remaining("10.0.0.2") == 0.0


def test_connections_that_try_no_key_weigh_a_tenth() -> None:
    clock = Clock()
    penalties = SourcePenalties(clock=clock)
    for _ in range(29):
        assert penalties.strike("10.0.0.1", weight=NO_KEY_TRIED) == 0.0
    assert penalties.strike("10.0.0.1", weight=NO_KEY_TRIED) == 5.0


def test_sources_are_bounded_and_quiet_ones_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    penalties = SourcePenalties(strikes_allowed=1, first_penalty=1.0, max_sources=100, clock=clock)
    for number in range(2000):  # each one penalized: none can be forgotten yet
        penalties.strike(f"10.0.{number // 256}.{number % 256}", now=0.0)
    assert len(penalties) == 100  # the rest were not tracked (sshd's "permissive")
    warnings = [r.getMessage() for r in caplog.records if "sources tracked" in r.getMessage()]
    assert len(warnings) == 1  # not one per untracked source
    clock.now += 61
    penalties.strike("10.8.8.8", now=0.0)  # a minute later: one more line, with the count
    assert "(1899 more since the last report)" in caplog.records[-1].getMessage()
    assert penalties.strike("10.9.9.9", now=1000.0) == 1.0  # the quiet ones made room
    assert len(penalties) == 1


def test_netblocks_and_the_exempt_list() -> None:
    default = SourceGrouping()
    assert default.source("192.0.2.7") == "192.0.2.7"
    assert default.source("::ffff:192.0.2.7") == "192.0.2.7"  # an IPv4 client on a v6 socket
    assert default.source("2001:db8::1") == "2001:db8::1"
    grouped = SourceGrouping(24, 64, exempt=["198.51.100.0/24", "2001:db8:1::/48"])
    assert grouped.source("192.0.2.7") == grouped.source("::ffff:192.0.2.200") == "192.0.2.0/24"
    assert grouped.source("2001:db8:0:1::5") == "2001:db8:0:1::/64"
    assert grouped.is_exempt("198.51.100.9") and grouped.is_exempt("::ffff:198.51.100.9")
    assert grouped.is_exempt("2001:db8:1:2::3")
    assert not grouped.is_exempt("192.0.2.7") and not grouped.is_exempt("unix")


def test_netblock_and_exempt_options_are_checked() -> None:
    assert Limits(per_source_net_block_size="24:64").checked().net_block_sizes() == (24, 64)
    assert Limits(per_source_net_block_size=16).net_block_sizes() == (16, 128)
    assert Limits(per_source_penalty_exempt_list="10.0.0.0/8, ::1").exempt_networks() == (
        "10.0.0.0/8",
        "::1",
    )
    for bad in ("33", "24:129", "24:", "a"):
        with pytest.raises(ConfigError, match="per_source_net_block_size"):
            Limits(per_source_net_block_size=bad).checked()
    with pytest.raises(ConfigError, match=r"'10\.0\.0\.0/33' is not an address or CIDR"):
        Limits(per_source_penalty_exempt_list="10.0.0.0/33").checked()
    for name in ("max_connections", "max_connections_per_key"):
        with pytest.raises(ConfigError, match=name):
            Limits(**{name: 0}).checked()  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unused_connection_timeout"):
        Limits(unused_connection_timeout=-1).checked()
    assert environment_options(
        {
            "MANHOLE_SSH_MAX_CONNECTIONS": "20",
            "MANHOLE_SSH_MAX_CONNECTIONS_PER_KEY": "4",
            "MANHOLE_SSH_UNUSED_CONNECTION_TIMEOUT": "600",
            "MANHOLE_SSH_PER_SOURCE_NET_BLOCK_SIZE": "24:64",
            "MANHOLE_SSH_PER_SOURCE_PENALTY_EXEMPT_LIST": "10.0.0.0/8,192.0.2.1",
        }
    ) == {
        "max_connections": 20,
        "max_connections_per_key": 4,
        "unused_connection_timeout": 600.0,
        "per_source_net_block_size": "24:64",
        "per_source_penalty_exempt_list": "10.0.0.0/8,192.0.2.1",
    }


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "dual-stack"])
def test_the_local_user_behind_a_loopback_connection(address: str) -> None:
    """Asked of the kernel (sock_diag), and read from /proc/net/tcp{,6} (the way taken
    where netlink is not allowed): the same answer, on IPv4, IPv6, and an IPv4 client of
    an IPv6 listener (seen as ::ffff:127.0.0.1)."""
    family = socket.AF_INET if address == "127.0.0.1" else socket.AF_INET6
    bind = "::" if address == "dual-stack" else address
    with socket.create_server((bind, 0), family=family, dualstack_ipv6=bind == "::") as listener:
        target = ("127.0.0.1" if address == "dual-stack" else address, listener.getsockname()[1])
        with socket.create_connection(target):
            accepted, peer = listener.accept()
            with accepted:
                ours = accepted.getsockname()[:2]
                assert loopback_peer_uid(peer[:2], ours) == os.geteuid()
                client_end, server_end = unmapped(peer[0]), unmapped(ours[0])
                assert client_end is not None and server_end is not None
                from_tables = peeruid._read_socket_tables(
                    (client_end, peer[1]), (server_end, ours[1]), peeruid._TABLES
                )
                assert from_tables == os.geteuid()
        assert loopback_peer_uid(("192.0.2.1", 5), ("127.0.0.1", 22)) is None  # not loopback


@pytest.mark.skipif(os.geteuid() != 0, reason="making a socket as another user needs root")
def test_the_local_user_behind_a_socket_made_by_another_user() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket_of_user(65534)
        with client:
            client.connect(listener.getsockname())
            accepted, peer = listener.accept()
            with accepted:
                assert loopback_peer_uid(peer[:2], accepted.getsockname()[:2]) == 65534
