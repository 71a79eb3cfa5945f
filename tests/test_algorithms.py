"""What the server offers, as ssh-audit (the tool security teams run) sees it."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Host, Keys, asyncssh_client, exec_code, start_host, stop_host

pytestmark = pytest.mark.slow  # real servers and other interpreters: see make test-fast

SSH_AUDIT = shutil.which("ssh-audit") or str(Path(sys.executable).with_name("ssh-audit"))


def ssh_audit(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SSH_AUDIT, "--no-colors", "--skip-rate-test", "-p", str(port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_only_the_classic_curve25519_exchange_is_warned_about(host: Host) -> None:
    report = ssh_audit(host.port)
    lines = report.stdout.splitlines()
    assert not [line for line in lines if "[fail]" in line], report.stdout
    warnings = [line for line in lines if "[warn]" in line]
    assert warnings and all("(kex) curve25519-sha256 " in line for line in warnings), warnings
    assert "compression: disabled" in report.stdout
    assert report.returncode == 2  # ssh-audit's "warnings only"


@pytest.fixture
def post_quantum_host(keys: Keys) -> Iterator[Host]:
    started = start_host(keys, "--set", "post_quantum_only=1")
    yield started
    stop_host(started)


def test_post_quantum_only_passes_ssh_audit(post_quantum_host: Host, keys: Keys) -> None:
    report = ssh_audit(post_quantum_host.port)
    assert report.returncode == 0, report.stdout
    assert "(kex) mlkem768x25519-sha256" in report.stdout

    async def login() -> str:
        async with asyncssh_client(
            post_quantum_host.port,
            client_keys=[str(keys.client_key)],
        ) as connection:
            result = await connection.run("'post-quantum'")
            return str(result.stdout)

    assert asyncio.run(login()) == "'post-quantum'\n"  # asyncssh's client speaks ML-KEM
    openssh = exec_code(post_quantum_host.port, keys.client_key, "'openssh'")
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr
    major, minor = (int(part) for part in re.findall(r"OpenSSH_(\d+)\.(\d+)", version)[0])
    assert openssh.returncode == (0 if (major, minor) >= (9, 9) else 255)  # ML-KEM: 9.9+
