"""authorized_keys options, parsed as sshd parses them."""

from __future__ import annotations

import calendar
import time

import pytest

from manhole_ssh.keyoptions import KeyOptions, split_options


def test_options_end_at_the_first_blank_outside_quotes() -> None:
    line = 'command="print(\\"a b\\")",from="10.0.0.0/8,127.0.0.1" ssh-ed25519 AAAA me@x'
    options, rest = split_options(line)
    assert rest == "ssh-ed25519 AAAA me@x"
    parsed = KeyOptions.parse(options)
    assert parsed.command == 'print("a b")'
    assert parsed.from_patterns == ("10.0.0.0/8", "127.0.0.1")


def test_from_patterns_negation_wins() -> None:
    options = KeyOptions.parse('from="127.*,!127.0.0.2,::1"')
    assert options.refusal("127.0.0.1") is None
    assert options.refusal("::1") is None
    assert "not allowed" in str(options.refusal("127.0.0.2"))
    assert "not allowed" in str(options.refusal("10.0.0.1"))


def test_expiry_time_local_and_utc() -> None:
    utc = KeyOptions.parse('expiry-time="20300101Z"')
    assert utc.expires_at == calendar.timegm((2030, 1, 1, 0, 0, 0, 0, 0, 0))
    local = KeyOptions.parse('expiry-time="203001011230"')
    assert local.expires_at == time.mktime((2030, 1, 1, 12, 30, 0, 0, 0, -1))
    assert utc.refusal("127.0.0.1", now=utc.expires_at - 1) is None
    assert "expired" in str(utc.refusal("127.0.0.1", now=utc.expires_at))


def test_restrict_and_pty() -> None:
    assert KeyOptions.parse("restrict").pty is False
    assert KeyOptions.parse("restrict,pty").pty is True
    assert KeyOptions.parse("no-pty,pty").pty is False
    assert KeyOptions.parse('no-port-forwarding,permitopen="h:1"').pty is True


@pytest.mark.parametrize(
    "options",
    [
        "unknown",
        "cert-authority=x",
        'principals="a"',  # only on a cert-authority line
        'cert-authority,principals=""',
        'environment="A=1"',
        "command",
        'no-pty="x"',
        'from="10.0.0.1/8"',
        'from=""',
        'expiry-time="2030"',
        'command="a",command="b"',
        ",",
    ],
)
def test_a_line_with_a_bad_or_unsupported_option_is_refused(options: str) -> None:
    with pytest.raises(ValueError):
        KeyOptions.parse(options)


def test_cert_authority_with_principals() -> None:
    options = KeyOptions.parse('cert-authority,principals="ops, oncall",no-pty')
    assert (options.cert_authority, options.principals, options.pty) == (
        True,
        ("ops", "oncall"),
        False,
    )


def test_unterminated_quote() -> None:
    with pytest.raises(ValueError, match="unterminated quote"):
        split_options('command="oops ssh-ed25519 AAAA')
