"""docs/beyond-one-machine.md, run: a user certificate made with `ssh-keygen -s` and a
five-minute validity logs in through a `cert-authority` line, and a `~/.ssh/config` entry
per service is all `ssh SERVICE` needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import Host, Keys

from manhole_ssh.access.host_key import host_public_key, public_key_line


def keygen(*argv: str | Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", *map(str, argv)], check=True, capture_output=True, timeout=30
    )


def test_a_short_lived_certificate_and_a_config_entry(
    host: Host, keys: Keys, tmp_path: Path
) -> None:
    # The CA, once; its public key in authorized_keys, for the principal "alice".
    ca = tmp_path / "manhole_ca"
    keygen("-t", "ed25519", "-N", "", "-C", "manhole CA", "-f", ca)
    ca_line = ca.with_name("manhole_ca.pub").read_text().strip()
    keys.authorized_keys.write_text(f'cert-authority,principals="alice" {ca_line}\n')
    # A user's key, and a certificate for it valid five minutes.
    user_key = tmp_path / "id_ed25519"
    keygen("-t", "ed25519", "-N", "", "-f", user_key)
    keygen("-s", ca, "-I", "alice@laptop", "-n", "alice", "-V", "+5m", user_key.with_suffix(".pub"))
    assert user_key.with_name("id_ed25519-cert.pub").exists()
    # One ~/.ssh/config entry per service, with the manhole's host key pinned.
    public_key = host_public_key(keys.host_key)
    assert public_key is not None
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"manhole-web {public_key_line(public_key)}\n")
    config = tmp_path / "config"
    config.write_text(
        "Host manhole-web\n"
        "    HostName 127.0.0.1\n"
        f"    Port {host.port}\n"
        f"    IdentityFile {user_key}\n"
        "    IdentitiesOnly yes\n"
        "    HostKeyAlias manhole-web\n"
        f"    UserKnownHostsFile {known_hosts}\n"
        "    StrictHostKeyChecking yes\n"
        "    IdentityAgent none\n"
        "    BatchMode yes\n"
    )
    entered = subprocess.run(
        ["ssh", "-F", str(config), "manhole-web", "6 * 7"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (entered.returncode, entered.stdout) == (0, "42\n"), entered.stderr
    # The plain key, without its certificate, is not in authorized_keys: refused.
    user_key.with_name("id_ed25519-cert.pub").unlink()
    refused = subprocess.run(
        ["ssh", "-F", str(config), "manhole-web", "6 * 7"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
