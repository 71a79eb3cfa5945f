"""Who gets in: only keys listed in authorized_keys, and nothing else."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from asyncssh.constants import MSG_CHANNEL_CLOSE, MSG_CHANNEL_OPEN_CONFIRMATION
from conftest import (
    Host,
    Keys,
    Terminal,
    asyncssh_client,
    exec_code,
    run_ssh,
    ssh_argv,
    start_host,
    stop_host,
    wait_for,
)
from rawssh import ChannelZero, channel_open, exec_request, marker_code, send_raw, wait_for_message

OpenTerminal = Callable[..., Terminal]


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
    async with asyncssh_client(port, **credentials) as connection:
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
    assert exec_code(host.port, keys.other_key, "1").returncode == 255  # not from 10.x


def authorize_other_key(keys: Keys, options: str) -> None:
    """authorized_keys: alice's key as is, the other key with ``options`` in front."""
    keys.authorized_keys.write_bytes(
        keys.client_key.with_suffix(".pub").read_bytes()
        + options.encode()
        + b" "
        + keys.other_key.with_suffix(".pub").read_bytes()
    )


@pytest.mark.parametrize(
    ("options", "gets_in"),
    [
        ('from="127.0.0.1"', True),
        ('from="127.0.0.0/8"', True),
        ('from="10.*,!127.0.0.1"', False),
        ('from="!127.0.0.1,*"', False),
        ('expiry-time="20200101"', False),
        ('expiry-time="29991231"', True),
        ("no-pty,no-port-forwarding,no-agent-forwarding", True),
        ("unknown-option", False),
        ('environment="A=1"', False),
        ("cert-authority", False),
    ],
)
def test_key_options(host: Host, keys: Keys, options: str, gets_in: bool) -> None:
    authorize_other_key(keys, options)
    result = exec_code(host.port, keys.other_key, "'in'")
    assert (result.returncode, result.stdout) == ((0, "'in'\n") if gets_in else (255, ""))
    assert exec_code(host.port, keys.client_key, "'alice'").stdout == "'alice'\n"


@pytest.mark.parametrize("options", ["no-pty", "restrict", "pty,restrict"])
def test_no_pty_and_restrict_refuse_a_terminal(
    host: Host, keys: Keys, terminals: OpenTerminal, options: str
) -> None:
    """The client is told, and the session goes on without a terminal (a script on stdin)."""
    authorize_other_key(keys, options)
    terminal = terminals(ssh_argv(host.port, keys.other_key, "127.0.0.1"))
    terminal.expect("PTY allocation request failed")
    terminal.wait_cooked()
    terminal.send("import sys; print('tty:', sys.stdout.isatty())\n\x04")
    terminal.expect("tty: False")
    assert terminal.wait_exit() == 0


def test_restrict_then_pty_allows_a_terminal(
    host: Host, keys: Keys, terminals: OpenTerminal
) -> None:
    authorize_other_key(keys, "restrict,pty")
    terminal = terminals(ssh_argv(host.port, keys.other_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.evaluate("import sys; sys.stdout.isatty()", "True")


def test_forced_command_is_all_a_key_runs(host: Host, keys: Keys) -> None:
    authorize_other_key(keys, 'command="print(6 * 7)"')
    result = exec_code(host.port, keys.other_key, "print('something else')")
    assert (result.returncode, result.stdout.strip()) == (0, "42")
    script = run_ssh(host.port, keys.other_key, "-T", "127.0.0.1", stdin=b"print('sneaky')\n")
    assert script.stdout.strip() == "42"


def test_revoke_ends_sessions_and_refuses_the_key(keys: Keys) -> None:
    import manhole_ssh

    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    fingerprint = asyncssh.read_public_key(keys.client_key.with_suffix(".pub")).get_fingerprint()

    async def session_cut_by_revoke() -> str:
        async with asyncssh_client(
            manhole.port,
            client_keys=[str(keys.client_key)],
        ) as connection:
            process = await connection.create_process()  # a script session, waiting
            await asyncio.to_thread(manhole.revoke, fingerprint)
            await asyncio.wait_for(process.wait_closed(), 10)
            return str(await process.stderr.read())

    try:
        assert "session ended: key revoked" in asyncio.run(session_cut_by_revoke())
        assert exec_code(manhole.port, keys.client_key, "1").returncode == 255
    finally:
        manhole_ssh.uninstall()


def test_a_session_not_yet_started_when_its_key_is_revoked_runs_nothing(
    keys: Keys, tmp_path: Path
) -> None:
    """A channel opened before revoke() whose exec request comes after: the server ended
    the session (exit status and close sent), so the request must not start it."""
    import manhole_ssh

    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    fingerprint = asyncssh.read_public_key(keys.client_key.with_suffix(".pub")).get_fingerprint()
    marker = tmp_path / "marker"
    channel = ChannelZero()

    async def exec_after_revoke() -> None:
        async with asyncssh_client(manhole.port, client_keys=[str(keys.client_key)]) as connection:
            connection._channels[0] = channel  # type: ignore[assignment]
            send_raw(connection, [channel_open()])
            await wait_for_message(channel, MSG_CHANNEL_OPEN_CONFIRMATION)
            await asyncio.to_thread(manhole.revoke, fingerprint)
            await wait_for_message(channel, MSG_CHANNEL_CLOSE)  # the server ended the session
            send_raw(connection, [exec_request(marker_code(marker))])
            await connection.wait_closed()  # cut by the server, after its grace

    def no_worker() -> bool:
        return not any(t.name.startswith("manhole-ssh worker") for t in threading.enumerate())

    try:
        asyncio.run(asyncio.wait_for(exec_after_revoke(), 20))
        wait_for(no_worker, 10, "no session worker thread")
    finally:
        manhole_ssh.uninstall()
    assert not marker.exists()


def test_revoked_keys_file(keys: Keys) -> None:
    revoked = keys.folder / "revoked_keys"
    revoked.write_text("")
    revoked.chmod(0o600)
    host = start_host(keys, "--set", f"revoked_keys={revoked}")
    try:
        assert exec_code(host.port, keys.client_key, "'before'").stdout == "'before'\n"
        revoked.write_bytes(keys.client_key.with_suffix(".pub").read_bytes())
        assert exec_code(host.port, keys.client_key, "1").returncode == 255
        revoked.write_text("")
        assert exec_code(host.port, keys.client_key, "'again'").stdout == "'again'\n"
        revoked.chmod(0o666)  # an unsafe list of revoked keys revokes every key
        assert exec_code(host.port, keys.client_key, "1").returncode == 255
    finally:
        stop_host(host)


def test_removed_key_loses_its_open_session(keys: Keys, terminals: OpenTerminal) -> None:
    host = start_host(keys, "--set", "end_sessions_on_key_removal=1")
    try:
        authorize_other_key(keys, "")
        alice = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        mallory = terminals(ssh_argv(host.port, keys.other_key, "-tt", "127.0.0.1"))
        alice.wait_prompt()
        mallory.wait_prompt()
        keys.authorized_keys.write_bytes(keys.client_key.with_suffix(".pub").read_bytes())
        mallory.expect("session ended: key removed from authorized_keys")
        mallory.wait_exit()
        alice.evaluate("'alice stays'", "'alice stays'")
    finally:
        stop_host(host)
