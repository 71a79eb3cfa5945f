"""Clients other than OpenSSH's ssh, measured (docs/clients.md): paramiko, asyncssh and
PuTTY's plink run a command and get its output and exit status; Dropbear's dbclient cannot
connect, for the two reasons the page gives. plink and dbclient are skipped where they are
not installed (.ci/run installs plink)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest
from conftest import Host, Keys, asyncssh_client

from manhole_ssh.access.host_key import fingerprint_of, host_public_key


def test_paramiko(host: Host, keys: Keys) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    public_key = host_public_key(keys.host_key)
    assert public_key is not None
    client.get_host_keys().add(
        f"[127.0.0.1]:{host.port}", "ssh-ed25519", paramiko.Ed25519Key(data=public_key)
    )
    client.connect(
        "127.0.0.1",
        host.port,
        username="alice",
        key_filename=str(keys.client_key),
        allow_agent=False,
        look_for_keys=False,
        timeout=20,
    )
    try:
        _, stdout, stderr = client.exec_command("6 * 7", timeout=20)
        assert stdout.read() == b"42\n", stderr.read()
        assert stdout.channel.recv_exit_status() == 0
        _, stdout, stderr = client.exec_command("1/0", timeout=20)
        assert b"ZeroDivisionError" in stderr.read()
        assert stdout.channel.recv_exit_status() == 1
    finally:
        client.close()


def test_asyncssh(host: Host, keys: Keys) -> None:
    async def run() -> tuple[str, int | None]:
        async with asyncssh_client(host.port, client_keys=[str(keys.client_key)]) as connection:
            result = await connection.run("6 * 7", timeout=20)
            return str(result.stdout), result.exit_status

    assert asyncio.run(run()) == ("42\n", 0)


def test_plink(host: Host, keys: Keys, tmp_path: Path) -> None:
    if shutil.which("plink") is None or shutil.which("puttygen") is None:
        pytest.skip("PuTTY's plink is not installed (apt-get install putty-tools)")
    putty_key = tmp_path / "id.ppk"
    subprocess.run(
        ["puttygen", str(keys.client_key), "-O", "private", "-o", str(putty_key)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    fingerprint = fingerprint_of(host_public_key(keys.host_key))
    assert fingerprint is not None
    plink = ["plink", "-batch", "-ssh", "-P", str(host.port), "-i", str(putty_key)]
    answer = subprocess.run(
        [*plink, "-hostkey", fingerprint, "127.0.0.1", "6 * 7"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (answer.returncode, answer.stdout) == (0, "42\n"), answer.stderr


def test_dropbear_cannot_connect_for_the_documented_reasons(
    host: Host, keys: Keys, tmp_path: Path
) -> None:
    """docs/clients.md says why dbclient fails. If this test fails, dbclient (or asyncssh)
    changed: check whether it now connects, and update the page."""
    if shutil.which("dbclient") is None or shutil.which("dropbearconvert") is None:
        pytest.skip("Dropbear's dbclient is not installed (apt-get install dropbear-bin)")
    dropbear_key = tmp_path / "id.dropbear"
    subprocess.run(
        ["dropbearconvert", "openssh", "dropbear", str(keys.client_key), str(dropbear_key)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    dbclient = ["dbclient", "-y", "-i", str(dropbear_key), "-p", str(host.port)]

    def attempt(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*dbclient, *options, "127.0.0.1", "6 * 7"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )

    # Its guessed first key-exchange packet: asyncssh answers "Key exchange not in progress".
    guessed = attempt()
    assert "42" not in guessed.stdout
    assert "exited: Disconnect received" in guessed.stderr, guessed.stderr
    # Its MACs are all encrypt-and-MAC; the manhole offers only encrypt-then-MAC (-etm).
    non_etm = attempt("-c", "aes128-ctr", "-m", "hmac-sha2-256")
    assert "No matching algo mac" in non_etm.stderr, non_etm.stderr
