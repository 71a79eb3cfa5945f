"""docs/quickstart.md, step by step, as a newcomer types it: a key of their own added to
authorized_keys, the host key's fingerprint read before anyone connects, the service of
docs/recipes/myservice.py started, and `ssh -i` with strict host key checking against that
fingerprint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import RECIPES, Launch, records_of
from test_workers import free_port


def command(python: str, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [python, "-m", "manhole_ssh", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def test_the_quickstart_from_keygen_to_a_checked_first_connection(
    launch: Launch, tmp_path: Path
) -> None:
    follow_the_quickstart(sys.executable, launch, tmp_path)


def follow_the_quickstart(python: str, launch: Launch, tmp_path: Path) -> None:
    """The quickstart's commands with this ``python`` (tests/test_release.py gives the
    one of a fresh venv where the built wheel is installed)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / ".local" / "state")}
    # §2: a key, and its .pub in authorized_keys.
    client_key = home / ".ssh" / "manhole_ed25519"
    made = command(python, "keygen", str(client_key), env=env).stdout
    assert made.startswith(f"wrote {client_key} (mode 0600) and {client_key}.pub: ED25519 SHA256:")
    authorized_keys = home / ".ssh" / "authorized_keys"
    authorized_keys.write_bytes(client_key.with_name("manhole_ed25519.pub").read_bytes())
    authorized_keys.chmod(0o600)
    # §3: the host key's fingerprint, known before the service or anyone connects.
    shown = command(python, "host-key", env=env).stdout.splitlines()
    fingerprint = shown[0].split()[1]
    assert fingerprint.startswith("SHA256:")
    port = free_port()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {shown[1]}\n")
    # §3: start the service; its log line names the same key.
    service = launch([python, str(RECIPES / "myservice.py")], {**env, "MANHOLE_PORT": str(port)})
    assert service.stderr is not None
    line = service.stderr.readline()
    assert f"manhole-ssh listening on 127.0.0.1 port {port} in process {service.pid} " in line
    assert f"(host key {fingerprint})" in line
    (record,) = records_of({service.pid})
    listed = command(python, "list", env=env).stdout
    assert fingerprint in listed, listed
    # §4: ssh -i, checking the host key strictly against what host-key printed.
    ssh = [
        "ssh", "-F", "/dev/null", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
        "-i", str(client_key), "-p", str(port), "127.0.0.1",
    ]  # fmt: skip
    entered = subprocess.run([*ssh, "len(cache)"], capture_output=True, text=True, timeout=30)
    assert (entered.returncode, entered.stdout) == (0, "1532\n"), entered.stderr
    failed = subprocess.run([*ssh, "1/0"], capture_output=True, text=True, timeout=30)
    assert failed.returncode == 1
    assert failed.stderr.endswith("ZeroDivisionError: division by zero\n")
    assert record.pid == service.pid
