"""Discovery records, `manhole-ssh list` and `manhole-ssh connect`, with the real ssh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Host, Keys, start_host, stop_host, wait_for, write_key_pair

import manhole_ssh
from manhole_ssh.connecting import read_records


def manhole_cli(*arguments: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "manhole_ssh", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ssh_options(key: Path) -> list[str]:
    """What a user adds to `manhole-ssh connect`: their key. Host key checking is left to
    connect itself (strict, from the record)."""
    options = ["IdentityAgent=none", "BatchMode=yes", "IdentitiesOnly=yes"]
    return ["-F", "/dev/null", *(f"-o{option}" for option in options), "-i", str(key)]


def test_list_and_connect(keys: Keys, runtime_dir: Path) -> None:
    host = start_host(keys)
    try:
        listed = manhole_cli("list")
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.splitlines()
        assert header.split()[:3] == ["PID", "LISTENS", "ON"]
        assert row.split()[:2] == [str(host.process.pid), f"127.0.0.1:{host.port}"]
        assert row.split()[2].startswith("SHA256:")
        assert "host_app.py" in row
        folder = runtime_dir / "manhole-ssh"
        assert folder.stat().st_mode & 0o777 == 0o700
        assert (folder / f"{host.process.pid}.json").stat().st_mode & 0o777 == 0o600

        # The only manhole: no PID needed. Its host key is checked strictly from the record.
        entered = manhole_cli("connect", *ssh_options(keys.client_key), "import os; os.getpid()")
        assert (entered.returncode, entered.stdout) == (0, f"{host.process.pid}\n"), entered.stderr
        named = manhole_cli(
            "connect", str(host.process.pid), *ssh_options(keys.client_key), "6 * 7"
        )
        assert named.stdout == "42\n"
        assert manhole_cli("connect", "1", "true").stderr.startswith(
            "manhole-ssh: no running manhole in process 1"
        )
    finally:
        stop_host(host)  # SIGKILL: no chance to remove its record
    assert manhole_cli("list").stdout.startswith("no running manhole")
    assert not list((runtime_dir / "manhole-ssh").iterdir())  # the stale record is gone


def test_connect_refuses_a_host_key_other_than_the_recorded_one(
    keys: Keys, runtime_dir: Path, tmp_path: Path
) -> None:
    host = start_host(keys)
    try:
        record_path = runtime_dir / "manhole-ssh" / f"{host.process.pid}.json"
        record = json.loads(record_path.read_text())
        impostor = write_key_pair(tmp_path / "impostor", "impostor")
        record["host_key"] = impostor.export_public_key("openssh").decode().strip()
        record_path.write_text(json.dumps(record))
        refused = manhole_cli("connect", *ssh_options(keys.client_key), "'in'")
        assert refused.returncode == 255
        assert "Host key verification failed" in refused.stderr
        assert refused.stdout == ""
    finally:
        stop_host(host)


def test_connect_needs_a_pid_when_several_run(keys: Keys) -> None:
    hosts: list[Host] = []
    try:
        hosts = [start_host(keys), start_host(keys)]
        result = manhole_cli("connect", "'x'")
        assert result.returncode == 2
        assert "2 manholes are running" in result.stderr
        assert all(str(host.process.pid) in result.stderr for host in hosts)
    finally:
        for host in hosts:
            stop_host(host)


def test_connect_through_a_unix_socket(keys: Keys, tmp_path: Path) -> None:
    host = start_host(keys, "--set", f"socket_path={tmp_path}/manhole-{{pid}}.sock")
    try:
        wait_for(lambda: len(read_records()) == 1, 10, "the record")
        (record,) = read_records()
        assert record.socket_path == f"{tmp_path}/manhole-{host.process.pid}.sock"
        entered = manhole_cli("connect", *ssh_options(keys.client_key), "import os; os.getpid()")
        assert entered.stdout == f"{host.process.pid}\n", entered.stderr
    finally:
        stop_host(host)


def test_stop_and_exit_remove_the_record(keys: Keys, runtime_dir: Path) -> None:
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    try:
        wait_for(lambda: manhole.record_path is not None, 10, "the record")
        assert manhole.record_path == runtime_dir / "manhole-ssh" / f"{os.getpid()}.json"
        assert [record.port for record in read_records()] == [manhole.port]
    finally:
        manhole_ssh.uninstall()
    assert read_records() == []
    assert manhole.record_path is None

    # A program that ends without stop(): its record goes at interpreter exit.
    code = (
        "import time, manhole_ssh\n"
        f"m = manhole_ssh.install(port=0, authorized_keys={str(keys.authorized_keys)!r}, "
        f"host_key={str(keys.host_key)!r})\n"
        "while m.record_path is None: time.sleep(0.01)\n"
        "print(len(list(m.record_path.parent.glob('*.json'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "1\n"), result.stderr
    assert read_records() == []
    assert not list((runtime_dir / "manhole-ssh").glob("*.json"))


def test_an_unsafe_runtime_folder_is_not_used(
    keys: Keys, runtime_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = runtime_dir / "manhole-ssh"
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    try:
        wait_for(lambda: "writes no discovery record" in caplog.text, 10, "the warning")
        assert manhole.record_path is None
        assert "chmod 700" in caplog.text
        assert not list(folder.iterdir())
        listed = manhole_cli("list")
        assert listed.returncode == 2
        assert "others may read or write it" in listed.stderr
    finally:
        manhole_ssh.uninstall()


def test_a_reused_pid_is_stale(keys: Keys, runtime_dir: Path) -> None:
    """A record whose pid now belongs to another process (here: ours, started later than
    the record says) is ignored and removed."""
    folder = runtime_dir / "manhole-ssh"
    folder.mkdir(mode=0o700)
    record = {"pid": os.getpid(), "name": "gone", "address": "127.0.0.1", "port": 1}
    record |= {"started": 0.0, "process_start": 1, "host_key": None, "fingerprint": None}
    (folder / f"{os.getpid()}.json").write_text(json.dumps(record))
    (folder / "garbage.json").write_text("{not json")
    assert read_records() == []
    assert not list(folder.iterdir())  # though the pid is alive: it is this test's
