"""Who gets in: only keys listed in authorized_keys, and nothing else."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest
from conftest import Host, Keys, exec_code, run_ssh


def test_wrong_key_is_refused(host: Host, keys: Keys) -> None:
    result = exec_code(host.port, keys.other_key, "1+1")
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr
    assert host.alive()


def test_password_is_refused(host: Host, keys: Keys) -> None:
    result = run_ssh(
        host.port,
        None,
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "127.0.0.1",
        "1+1",
    )
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr  # the only method offered


async def _try_login(port: int, **credentials: object) -> str:
    async with asyncssh.connect(
        "127.0.0.1", port, known_hosts=None, agent_path=None, config=None, **credentials
    ) as connection:
        result = await connection.run("1+1")
        return str(result.stdout)


def test_client_without_key_gets_nothing(host: Host, keys: Keys) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(_try_login(host.port, client_keys=None, password=None))
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(_try_login(host.port, client_keys=None, password="guess"))


def test_asyncssh_client_with_the_key_gets_in(host: Host, keys: Keys) -> None:
    output = asyncio.run(_try_login(host.port, client_keys=[str(keys.client_key)]))
    assert output == "2\n"


def test_key_added_and_removed_without_restart(host: Host, keys: Keys) -> None:
    assert exec_code(host.port, keys.other_key, "1").returncode == 255
    with keys.authorized_keys.open("ab") as authorized:
        authorized.write(keys.other_key.with_suffix(".pub").read_bytes())
    assert exec_code(host.port, keys.other_key, "'now in'").stdout == "'now in'\n"
    keys.authorized_keys.write_bytes(keys.other_key.with_suffix(".pub").read_bytes())
    assert exec_code(host.port, keys.client_key, "1").returncode == 255


def test_bad_lines_are_skipped_not_fatal(host: Host, keys: Keys) -> None:
    good = keys.client_key.with_suffix(".pub").read_bytes()
    keys.authorized_keys.write_bytes(
        b"# comment\n\nssh-ed25519 not-base64!!\ngarbage line\n"
        b'from="10.0.0.0/8" ' + keys.other_key.with_suffix(".pub").read_bytes() + good
    )
    assert exec_code(host.port, keys.client_key, "'ok'").stdout == "'ok'\n"
    # A key with options is never accepted without them being enforced.
    assert exec_code(host.port, keys.other_key, "1").returncode == 255
