"""The command line's first use: connect before the host key exists, list and connect with
a manhole waiting for its signal, errors in the user's own spelling, --version."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from conftest import Keys, Launch, records_of, wait_for
from test_discovery import manhole_cli, ssh_options

import manhole_ssh


def test_connect_on_the_first_connection_to_a_default_host_key(
    keys: Keys, launch: Launch, tmp_path: Path
) -> None:
    """The default host key is made at the first connection: connect makes that happen,
    reads the key from the record, and checks it strictly (no question, no known_hosts)."""
    script = tmp_path / "service.py"
    script.write_text(
        "import time, manhole_ssh\n"
        f"manhole_ssh.install(port=0, authorized_keys={str(keys.authorized_keys)!r})\n"
        "time.sleep(60)\n"
    )
    service = launch([sys.executable, str(script)], {"XDG_STATE_HOME": str(tmp_path / "state")})
    (record,) = records_of({service.pid})
    assert record.host_key is None
    entered = manhole_cli("connect", *ssh_options(keys.client_key), "import os; os.getpid()")
    assert (entered.returncode, entered.stdout) == (0, f"{service.pid}\n"), entered.stderr
    (record,) = records_of({service.pid})
    assert record.host_key is not None


def test_a_manhole_waiting_for_its_signal_is_listed(
    keys: Keys, launch: Launch, tmp_path: Path
) -> None:
    """`run --activate-on USR1`: list shows the signal to send, connect says to send it;
    once sent, connect gets in."""
    script = tmp_path / "service.py"
    script.write_text("import time\nprint('running', flush=True)\ntime.sleep(60)\n")
    run = [sys.executable, "-m", "manhole_ssh", "run", "--activate-on", "USR1", str(script)]
    service = launch(run, {})
    assert service.stdout is not None and service.stdout.readline() == "running\n"
    listed = manhole_cli("list").stdout
    assert f"(waits for kill -USR1 {service.pid})" in listed, listed
    refused = manhole_cli("connect", "'x'")
    assert refused.stderr == (
        f"manhole-ssh: the manhole of process {service.pid} waits for SIGUSR1 to listen: "
        f"kill -USR1 {service.pid}, then connect again\n"
    )
    os.kill(service.pid, signal.SIGUSR1)
    wait_for(lambda: records_of({service.pid})[0].port is not None, 10, "the port")
    entered = manhole_cli("connect", *ssh_options(keys.client_key), "6 * 7")
    assert entered.stdout == "42\n", entered.stderr


def test_errors_spell_options_as_the_user_gave_them(
    keys: Keys, launch: Launch, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = tmp_path / "service.py"
        script.write_text("print('ran')\n")
        run = [sys.executable, "-m", "manhole_ssh", "run"]
        environment = {**os.environ, "MANHOLE_SSH_AUTHORIZED_KEYS": str(keys.authorized_keys)}
        by_flag = subprocess.run(
            [*run, "--port", str(port), str(script)],
            capture_output=True,
            text=True,
            timeout=30,
            env=environment,
        )
        assert by_flag.returncode == 2
        assert "give another port, or --port 0 for any free one" in by_flag.stderr
        by_variable = subprocess.run(
            [sys.executable, "-c", "import manhole_ssh.auto"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**environment, "MANHOLE_SSH": "1", "MANHOLE_SSH_PORT": str(port)},
        )
        assert "give another port, or MANHOLE_SSH_PORT=0 for any free one" in by_variable.stderr
        missing = tmp_path / "missing_authorized_keys"
        no_keys = subprocess.run(
            [*run, "--port", "0", "--authorized-keys", str(missing), str(script)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "or give --authorized-keys PATH" in no_keys.stderr, no_keys.stderr


def test_a_misspelt_variable_gets_a_suggestion(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text("print('ran')\n")
    mistyped = subprocess.run(
        [sys.executable, "-m", "manhole_ssh", "run", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "MANHOLE_SSH_AUTORIZED_KEYS": "/x"},
    )
    assert mistyped.returncode == 2
    assert mistyped.stderr == (
        "manhole-ssh: MANHOLE_SSH_AUTORIZED_KEYS is not an option of manhole-ssh; "
        "did you mean MANHOLE_SSH_AUTHORIZED_KEYS?\n"
    )


def test_run_on_a_program_that_installs_its_own(keys: Keys, tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(
        "import manhole_ssh\n"
        f"manhole_ssh.install(port=0, authorized_keys={str(keys.authorized_keys)!r}, "
        f"host_key={str(keys.host_key)!r})\n"
    )
    run = [sys.executable, "-m", "manhole_ssh", "run", "--port", "0"]
    result = subprocess.run(
        [*run, "--authorized-keys", str(keys.authorized_keys), str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "and the program calls install() itself: run the program without manhole-ssh run" in (
        result.stderr
    )


def test_version_and_the_demo_log(keys: Keys, launch: Launch) -> None:
    version = manhole_cli("--version")
    assert version.stdout == f"manhole-ssh {manhole_ssh.__version__}\n"
    demo = launch(
        [
            sys.executable,
            "-m",
            "manhole_ssh",
            "demo",
            "--port",
            "0",
            "--authorized-keys",
            str(keys.authorized_keys),
            "--host-key",
            str(keys.host_key),
        ],
        {},
    )
    assert demo.stdout is not None and demo.stderr is not None
    log = demo.stderr.readline()
    assert "manhole-ssh listening on 127.0.0.1 port" in log
    assert "ssh -p" not in log  # a command without -i fails for anyone without ~/.ssh keys
    lines = [demo.stdout.readline() for _ in range(4)]
    assert lines[3].strip().startswith(f"ssh -i {keys.client_key} -p "), lines
