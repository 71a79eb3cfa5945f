"""Which local user owns the other end of a loopback TCP connection (Linux).

Every local user connects from 127.0.0.1, so an address cannot tell them apart; the kernel
can. The client's socket is a row of ``/proc/net/tcp`` (or ``tcp6``) whose local
address:port is the client's and whose remote address:port is ours, and that row names
the uid that made the socket. The row is read once, right after ``accept()``, while the
client is still connected.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from .penalties import unmapped

__all__ = ["loopback_peer_uid"]

_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))

Endpoint = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]


def _endpoint(text: str) -> Endpoint:
    """``0100007F:1F90`` -> (127.0.0.1, 8080): the address is in the kernel's byte order,
    one 32-bit word at a time."""
    address_hex, port_hex = text.split(":")
    raw = bytes.fromhex(address_hex)
    packed = b"".join(raw[index : index + 4][::-1] for index in range(0, len(raw), 4))
    ip = ipaddress.ip_address(packed)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, int(port_hex, 16)


def loopback_peer_uid(
    client: tuple[str, int], server: tuple[str, int], tables: tuple[Path, ...] = _TABLES
) -> int | None:
    """The uid owning the client's socket of a loopback connection, or ``None`` (not
    loopback, not Linux, or the client is gone already).

    :param client: the client's address and port (our peer name).
    :param server: our address and port (our socket name).
    """
    client_ip, server_ip = unmapped(client[0]), unmapped(server[0])
    if client_ip is None or server_ip is None or not client_ip.is_loopback:
        return None
    wanted = ((client_ip, client[1]), (server_ip, server[1]))
    client_port = f":{client[1]:04X}"  # a cheap test before parsing the row
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or not fields[1].endswith(client_port):
                continue
            try:
                if (_endpoint(fields[1]), _endpoint(fields[2])) == wanted:
                    return int(fields[7])
            except ValueError:
                continue
    return None
