"""authorized_keys options, parsed as sshd parses them."""

from __future__ import annotations

import calendar
import time

import pytest

from manhole_ssh.access.key_options import KeyOptions, split_options


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
    """Taken in order, as sshd's auth-options.c takes them: the last word on the pty wins."""
    assert KeyOptions.parse("restrict").pty is False
    assert KeyOptions.parse("restrict,pty").pty is True
    assert KeyOptions.parse("pty,restrict").pty is False
    assert KeyOptions.parse("no-pty,pty").pty is True
    assert KeyOptions.parse("pty,no-pty").pty is False
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


def test_from_patterns_know_only_star_and_question_mark() -> None:
    """sshd's match_pattern: ``[`` is a letter like any other, not fnmatch's set."""
    options = KeyOptions.parse('from="127.0.0.[12],10.0.0.?"')
    assert "not allowed" in str(options.refusal("127.0.0.1"))
    assert options.refusal("127.0.0.[12]") is None
    assert options.refusal("10.0.0.7") is None
    assert "not allowed" in str(options.refusal("10.0.0.17"))


@pytest.mark.parametrize(
    ("patterns", "source", "allowed"),
    [
        ("*,!127.0.16.2", "::ffff:127.0.16.2", False),
        ("127.0.16.2", "::ffff:127.0.16.2", True),
        ("127.0.0.0/8", "::ffff:127.0.16.2", True),
        ("127.0.0.0/8", "::ffff:10.0.0.1", False),
        ("::ffff:127.0.16.2", "::ffff:127.0.16.2", False),  # matched as IPv4, as sshd
        ("::1", "::1", True),
    ],
)
def test_ipv4_mapped_sources_match_as_ipv4(patterns: str, source: str, allowed: bool) -> None:
    refusal = KeyOptions.parse(f'from="{patterns}"').refusal(source)
    assert (refusal is None) is allowed, refusal


def test_any_from_refuses_the_unix_socket() -> None:
    assert "Unix socket" in str(KeyOptions.parse('from="*"').refusal("unix"))
    assert KeyOptions.parse("no-pty").refusal("unix") is None


def test_no_touch_required_only_on_a_cert_authority_line() -> None:
    assert KeyOptions.parse("cert-authority,no-touch-required").touch_required is False
    assert KeyOptions.parse("cert-authority").touch_required is True
    with pytest.raises(ValueError, match="cert-authority"):
        KeyOptions.parse("no-touch-required")
