"""Where sshd's rules for authorized_keys are followed to the letter, with the real ssh."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from conftest import Keys, exec_code, run_ssh, ssh_argv, write_key_pair

import manhole_ssh


@pytest.fixture
def installed() -> Iterator[None]:
    yield
    manhole_ssh.uninstall()


def public_line(key: Path) -> str:
    return key.with_suffix(".pub").read_text().strip()


def test_the_first_matching_line_wins(keys: Keys, installed: None) -> None:
    """A command= line followed by a plain line for the same key: the command holds."""
    line = public_line(keys.client_key)
    keys.authorized_keys.write_text(f'command="print(6 * 7)" {line}\n{line}\n')
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    assert exec_code(manhole.port, keys.client_key, "print('free')").stdout == "42\n"


def test_a_line_refused_by_from_is_passed_over(keys: Keys, installed: None) -> None:
    """As sshd: the first line whose options allow this login is the one used."""
    line = public_line(keys.client_key)
    keys.authorized_keys.write_text(f'from="10.9.9.9" {line}\ncommand="print(1)" {line}\n{line}\n')
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    assert exec_code(manhole.port, keys.client_key, "print('free')").stdout == "1\n"


def test_a_later_source_does_not_override_an_earlier_one(
    keys: Keys, tmp_path: Path, installed: None
) -> None:
    line = public_line(keys.client_key)
    keys.authorized_keys.write_text(f'restrict,command="print(6 * 7)" {line}\n')
    second = keys.folder / "authorized_keys2"
    second.write_text(f"{line}\n")
    second.chmod(0o600)
    manhole = manhole_ssh.install(
        port=0, authorized_keys=[keys.authorized_keys, second], host_key=keys.host_key
    )
    assert exec_code(manhole.port, keys.client_key, "print('free')").stdout == "42\n"


def test_a_from_key_cannot_use_the_unix_socket(keys: Keys, tmp_path: Path, installed: None) -> None:
    keys.authorized_keys.write_text(f'from="*" {public_line(keys.client_key)}\n')
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    path = folder / "m.sock"
    manhole_ssh.install(
        socket_path=path, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    proxy = f"ProxyCommand={sys.executable} -m manhole_ssh proxy {path}"
    argv = ssh_argv(22, keys.client_key, "-o", proxy, "manhole", "'in'")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 255 and result.stdout == "", result.stdout


def test_an_ipv4_client_of_an_ipv6_listener_matches_as_ipv4(keys: Keys, installed: None) -> None:
    """The client shows as ::ffff:127.0.16.2; from= is matched against 127.0.16.2."""
    manhole = manhole_ssh.install(
        bind_address="::ffff:127.0.0.1",
        port=0,
        authorized_keys=keys.authorized_keys,
        host_key=keys.host_key,
    )
    cases = [
        ("*,!127.0.16.2", "127.0.16.2", False),
        ("*,!127.0.16.2", "127.0.0.1", True),
        ("127.0.16.2", "127.0.16.2", True),
        ("127.0.0.0/8", "127.0.16.2", True),
    ]
    for patterns, client_address, gets_in in cases:
        keys.authorized_keys.write_text(f'from="{patterns}" {public_line(keys.client_key)}\n')
        result = run_ssh(manhole.port, keys.client_key, "-b", client_address, "127.0.0.1", "'in'")
        assert (result.stdout == "'in'\n") is gets_in, (patterns, client_address, result.stderr)


def test_a_certificate_source_address_matches_a_mapped_client(keys: Keys, installed: None) -> None:
    ca = asyncssh.generate_private_key("ssh-ed25519")
    keys.authorized_keys.write_text(f"cert-authority {ca.export_public_key().decode()}")
    user_key = write_key_pair(keys.folder / "certified", "certified")
    import getpass

    cert = ca.generate_user_certificate(
        user_key, "certified-id", principals=[getpass.getuser()], source_address=["127.0.0.1"]
    )
    (keys.folder / "certified-cert.pub").write_bytes(cert.export_certificate())
    manhole = manhole_ssh.install(
        bind_address="::ffff:127.0.0.1",
        port=0,
        authorized_keys=keys.authorized_keys,
        host_key=keys.host_key,
    )
    assert exec_code(manhole.port, keys.folder / "certified", "'in'").stdout == "'in'\n"
