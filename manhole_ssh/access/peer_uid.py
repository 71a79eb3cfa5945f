"""Which local user owns the other end of a loopback TCP connection (Linux).

Every local user connects from 127.0.0.1, so an address cannot tell them apart; the kernel
can: it records which user made each socket. The client's socket is the one whose local
address:port is the client's and whose remote address:port is ours. The kernel is asked
for that one socket through sock_diag (netlink, as ``ss`` does: a direct lookup, a few
microseconds); where netlink is not allowed (some sandboxes), ``/proc/net/tcp`` and
``tcp6`` are read instead (their rows name the uid too, but reading them walks every
socket of the machine: about 10 ms with a few hundred). Asked once, right after
``accept()``, while the client is still connected.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from pathlib import Path

from ..green.originals import socket_class
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
    try:
        return _ask_the_kernel((client_ip, client[1]), (server_ip, server[1]))
    except _NoNetlink:
        return _read_socket_tables((client_ip, client[1]), (server_ip, server[1]), tables)


def _read_socket_tables(client: Endpoint, server: Endpoint, tables: tuple[Path, ...]) -> int | None:
    wanted = (client, server)
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


class _NoNetlink(Exception):
    """sock_diag cannot be asked here: read the tables in /proc instead."""


_NETLINK_INET_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_DIAG_REQUEST = struct.Struct("=BBBBI")  # family, protocol, extensions, pad, states
_NO_COOKIE = b"\xff" * 8
_UID_OFFSET = 4 + 48 + 12  # in inet_diag_msg: after the header, the socket id, 3 counters


def _ask_the_kernel(client: Endpoint, server: Endpoint) -> int | None:
    """sock_diag's answer for the client's socket: IPv4 first; then IPv6, where an IPv4
    client on an IPv6 socket appears with mapped addresses."""
    for family in (socket.AF_INET, socket.AF_INET6):
        if family == socket.AF_INET and (client[0].version != 4 or server[0].version != 4):
            continue
        uid = _ask_once(family, client, server)
        if uid is not None:
            return uid
    return None


def _packed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, family: int) -> bytes:
    if family == socket.AF_INET6 and ip.version == 4:
        return ipaddress.IPv6Address(f"::ffff:{ip}").packed
    return ip.packed.ljust(16, b"\0")


def _ask_once(family: int, client: Endpoint, server: Endpoint) -> int | None:
    socket_id = (
        struct.pack(">HH", client[1], server[1])
        + _packed(client[0], family)
        + _packed(server[0], family)
        + struct.pack("=I", 0)
        + _NO_COOKIE
    )
    request = _DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + socket_id
    header = _NLMSG_HEADER.pack(
        _NLMSG_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0
    )
    try:
        real_socket = socket_class()  # an OS socket even in a gevent or eventlet host
        with real_socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_INET_DIAG) as diag:
            diag.settimeout(1.0)
            diag.send(header + request)
            answer = diag.recv(65536)
    except (OSError, AttributeError) as error:  # no AF_NETLINK, or not allowed here
        raise _NoNetlink from error
    if len(answer) < _NLMSG_HEADER.size:
        return None
    _, kind, _, _, _ = _NLMSG_HEADER.unpack_from(answer)
    if kind == _NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", answer, _NLMSG_HEADER.size)
        if -code in (errno.ENOENT, 0):
            return None  # no such socket (gone already, or another family)
        raise _NoNetlink(f"sock_diag answered error {-code}")
    if kind != _SOCK_DIAG_BY_FAMILY or len(answer) < _NLMSG_HEADER.size + _UID_OFFSET + 4:
        return None
    (uid,) = struct.unpack_from("=I", answer, _NLMSG_HEADER.size + _UID_OFFSET)
    return int(uid)
