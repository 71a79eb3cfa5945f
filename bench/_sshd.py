"""A private OpenSSH sshd for the baselines: loopback, a free port, the bench's keys.

It runs as the current user with its own sshd_config, host key and pid-less foreground
process (``sshd -D -e -f CONFIG``), so it needs no system service and leaves nothing
behind. ``/usr/sbin/sshd`` comes from Debian's ``openssh-server`` (``make bench``
installs it); without it, :func:`private_sshd` yields ``None`` and the baseline cells
say ``sshd: not installed``.

Logins through it run the command in the user's shell, as any ssh login does, but the
session starts with ``SHLVL=1``, so bash does not read ``~/.bashrc`` (which it otherwise
does for sshd's commands): the baseline is sshd and the program, not this machine's shell
set-up (pyenv, conda, …).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
NOT_INSTALLED = "sshd: not installed"


@dataclass(frozen=True)
class Sshd:
    port: int
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    """A loopback port the kernel says is free now (sshd cannot be given port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until sshd answers with its banner on ``port``, or it has died, or 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if connection.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            pass
        time.sleep(0.01)  # polling a condition: the port opens when sshd has bound it
    raise TimeoutError(f"sshd did not listen: {log.read_text(errors='replace')}")


def _config(folder: Path, port: int, authorized_keys: Path) -> str:
    return "\n".join(
        [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {folder / 'ssh_host_ed25519_key'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            # The bench's files live under /tmp (mode 1777), which StrictModes refuses.
            "StrictModes no",
            "PidFile none",
            "LogLevel ERROR",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "SetEnv SHLVL=1",
            "",
        ]
    )


@contextmanager
def private_sshd(authorized_keys: Path) -> Iterator[Sshd | None]:
    """An sshd on a free loopback port that lets in the keys of ``authorized_keys``;
    ``None`` when /usr/sbin/sshd is not installed."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        yield None
        return
    with contextlib.suppress(PermissionError):  # sshd run by another user needs none
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    with tempfile.TemporaryDirectory(prefix="manhole-bench-sshd-") as name:
        folder = Path(name)
        folder.chmod(0o700)
        host_key = folder / "ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
            check=True,
            capture_output=True,
        )
        port = _free_port()
        config = folder / "sshd_config"
        config.write_text(_config(folder, port, authorized_keys))
        log = folder / "sshd.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        try:
            _wait_listening(port, process, log)
            yield Sshd(port, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
