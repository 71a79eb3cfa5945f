"""The options in front of a key in authorized_keys, parsed strictly, as sshd does.

Supported: ``from="pattern,…"``, ``expiry-time="YYYYMMDD[HHMM[SS]][Z]"``, ``no-pty``,
``pty`` and ``restrict`` (taken in order, as sshd does: ``restrict,pty`` allows a terminal,
``pty,restrict`` does not), ``command="…"`` (the session runs only that code, as an exec
would), and ``cert-authority`` with ``principals="…"`` and ``no-touch-required`` (the key
is a CA whose user certificates may log in; see :mod:`.certificates`). The forwarding
options (``no-port-forwarding``, ``no-agent-forwarding``, ``no-X11-forwarding``,
``no-user-rc``, ``permitopen``, ``permitlisten``) restrict what the manhole never offers,
so they are accepted as they are.
Anything else — unknown options, ``environment``, ``verify-required``, ``no-touch-required``
on a plain key line — makes the whole line unusable: a key must never get in while a
restriction next to it is ignored.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
import time
from dataclasses import dataclass

__all__ = ["KeyOptions", "address_as_sshd_sees_it", "split_options"]

_NO_OPS = frozenset(
    {
        "no-port-forwarding",
        "no-agent-forwarding",
        "no-x11-forwarding",
        "no-user-rc",
        "permitopen",
        "permitlisten",
        "port-forwarding",
        "agent-forwarding",
        "x11-forwarding",
        "user-rc",
    }
)
_NOT_SUPPORTED = {
    "environment": "sessions take no environment",
    "tunnel": "tunnels are not offered",
    "verify-required": "security-key PIN verification is not supported",
}


def split_options(line: str) -> tuple[str, str]:
    """Split a line into its options and the rest (key type, key, comment).

    The options end at the first blank outside double quotes.
    """
    in_quotes = False
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and in_quotes:
            index += 2
            continue
        if char == '"':
            in_quotes = not in_quotes
        elif char in " \t" and not in_quotes:
            return line[:index], line[index:].strip()
        index += 1
    raise ValueError(
        "unterminated quote in the options" if in_quotes else "no key after the options"
    )


def _split_list(options: str) -> list[tuple[str, str | None]]:
    parts: list[tuple[str, str | None]] = []
    current = ""
    in_quotes = False
    index = 0
    while index <= len(options):
        char = options[index] if index < len(options) else ","
        if char == "\\" and in_quotes and index + 1 < len(options):
            current += options[index + 1]
            index += 2
            continue
        if char == '"':
            in_quotes = not in_quotes
        elif char == "," and not in_quotes:
            name, equals, value = current.partition("=")
            if not name:
                raise ValueError("empty option")
            parts.append((name.lower(), value if equals else None))
            current = ""
        else:
            current += char
        index += 1
    return parts


def _parse_expiry(text: str) -> float:
    utc = text.endswith(("Z", "z"))
    digits = text[:-1] if utc else text
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not digits.isdigit() or len(digits) not in formats:
        raise ValueError(f"expiry-time {text!r} is not YYYYMMDD[HHMM[SS]][Z]")
    parsed = time.strptime(digits, formats[len(digits)])
    return float(calendar.timegm(parsed)) if utc else time.mktime(parsed)


def _check_pattern(pattern: str) -> None:
    body = pattern.removeprefix("!")
    if not body:
        raise ValueError("empty pattern in from=")
    if "/" in body:
        try:
            ipaddress.ip_network(body, strict=True)
        except ValueError as error:
            raise ValueError(f"from= pattern {body!r}: {error}") from None


@dataclass(frozen=True)
class KeyOptions:
    """What the options allow; the defaults are a line without options."""

    from_patterns: tuple[str, ...] | None = None
    expires_at: float | None = None
    pty: bool = True
    command: str | None = None
    cert_authority: bool = False  # the key signs user certificates; it does not log in
    principals: tuple[str, ...] | None = None  # certificate principals allowed (CA lines)
    touch_required: bool = True  # a security key's signature must show a touch (CA lines)

    @classmethod
    def parse(cls, options: str) -> KeyOptions:
        """:raises ValueError: with the reason the line cannot be used."""
        from_patterns: tuple[str, ...] | None = None
        expires_at: float | None = None
        pty = True
        cert_authority = no_touch_required = False
        command: str | None = None
        principals: tuple[str, ...] | None = None
        for name, value in _split_list(options):
            needs_value = name in ("from", "expiry-time", "command", "principals")
            if needs_value and value is None:
                raise ValueError(f"option {name} needs a value")
            if not needs_value and value is not None and name not in ("permitopen", "permitlisten"):
                raise ValueError(f"option {name} takes no value")
            if name == "from":
                assert value is not None
                patterns = tuple(pattern.strip() for pattern in value.split(","))
                for pattern in patterns:
                    _check_pattern(pattern)
                from_patterns = (from_patterns or ()) + patterns
            elif name == "expiry-time":
                assert value is not None
                expires_at = _parse_expiry(value)
            elif name == "command":
                if command is not None:
                    raise ValueError("more than one command=")
                command = value
            elif name == "cert-authority":
                cert_authority = True
            elif name == "principals":
                assert value is not None
                principals = tuple(part.strip() for part in value.split(",") if part.strip())
                if not principals:
                    raise ValueError("principals= names no principal")
            elif name in ("restrict", "no-pty"):  # in order, as sshd: a later pty undoes it
                pty = False
            elif name == "pty":
                pty = True
            elif name == "no-touch-required":
                no_touch_required = True
            elif name in _NOT_SUPPORTED:
                raise ValueError(f"option {name}: {_NOT_SUPPORTED[name]}")
            elif name not in _NO_OPS:
                raise ValueError(f"unknown option {name!r}")
        if principals is not None and not cert_authority:
            raise ValueError("principals= is only for cert-authority lines")
        if no_touch_required and not cert_authority:
            raise ValueError(
                "no-touch-required is honoured only on cert-authority lines (a plain "
                "security key always needs a touch here)"
            )
        return cls(
            from_patterns=from_patterns,
            expires_at=expires_at,
            pty=pty,
            command=command,
            cert_authority=cert_authority,
            principals=principals,
            touch_required=not no_touch_required,
        )

    def refusal(self, source: str, now: float | None = None) -> str | None:
        """Why a login from address ``source`` is refused now, or ``None`` if it may go on."""
        if self.expires_at is not None and (now or time.time()) >= self.expires_at:
            expired = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.expires_at))
            return f"key expired at {expired} (expiry-time)"
        if self.from_patterns is None:
            return None
        if source == "unix":
            return f'from="{",".join(self.from_patterns)}" keys cannot log in over the Unix socket'
        if not _source_matches(address_as_sshd_sees_it(source), self.from_patterns):
            return f'source {source} is not allowed by from="{",".join(self.from_patterns)}"'
        return None


def address_as_sshd_sees_it(source: str) -> str:
    """An IPv4 client of an IPv6 listener shows as ``::ffff:a.b.c.d``; sshd matches it as
    ``a.b.c.d`` (as its patterns, CIDR lists and certificate source-address are written)."""
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return source


def _wildcard(pattern: str) -> re.Pattern[str]:
    """sshd's match_pattern: ``*`` and ``?`` are the only wildcards (``[`` is a letter)."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.compile("".join(parts), re.DOTALL)


def _pattern_matches(source: str, pattern: str) -> bool:
    if "/" in pattern:
        try:
            return ipaddress.ip_address(source) in ipaddress.ip_network(pattern)
        except ValueError:
            return False
    return _wildcard(pattern).fullmatch(source.lower()) is not None


def _source_matches(source: str, patterns: tuple[str, ...]) -> bool:
    """sshd's rule: a matching negated pattern refuses; else any matching pattern allows."""
    allowed = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _pattern_matches(source, pattern.removeprefix("!")):
            if negated:
                return False
            allowed = True
    return allowed
