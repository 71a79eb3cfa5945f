"""Discovery records, `manhole-ssh list` and `manhole-ssh connect`, with the real ssh."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Host, Keys, Launch, start_host, stop_host, wait_for, write_key_pair

import manhole_ssh
from manhole_ssh.discovery import is_zombie, read_records


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


LEFTOVER_PROGRAM = """
import multiprocessing, os, sys, time, manhole_ssh

def install():
    manhole_ssh.install(socket_path={sockets!r} + "/m-{{pid}}.sock",
                        authorized_keys={keys!r}, host_key={host_key!r})
    while manhole_ssh.installed().record_path is None:
        time.sleep(0.01)

if sys.argv[1] == "pool":
    pool = multiprocessing.get_context("fork").Pool(2, initializer=install)
    pool.map(abs, range(8))
    print("ready", flush=True)
    sys.stdin.readline()
    pool.terminate()  # SIGTERM to each worker
    pool.join()
    print("terminated", flush=True)
    time.sleep(60)
install()
print("ready", flush=True)
if sys.argv[1] == "_exit":
    os._exit(0)  # as billiard's pool processes end
time.sleep(60)  # until SIGTERM, for which nothing has a handler
"""


def test_leftovers_of_ended_processes_are_cleaned_by_the_next_list(
    keys: Keys, launch: Launch, runtime_dir: Path, tmp_path: Path
) -> None:
    """Processes ended by SIGTERM with no handler, by os._exit (left a zombie: it is not
    listed), and a multiprocessing pool's workers terminated: each leaves its record and
    socket file; the next `manhole-ssh list` removes both."""
    sockets = tmp_path / "sockets"
    sockets.mkdir(mode=0o700)
    script = tmp_path / "leftovers.py"
    script.write_text(
        LEFTOVER_PROGRAM.format(
            sockets=str(sockets), keys=str(keys.authorized_keys), host_key=str(keys.host_key)
        )
    )
    killed = launch([sys.executable, str(script), "sigterm"], {})
    exited = launch([sys.executable, str(script), "_exit"], {})
    pool = subprocess.Popen(
        [sys.executable, str(script), "pool"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for process in (killed, exited, pool):
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        records = runtime_dir / "manhole-ssh"
        wait_for(lambda: len(list(records.glob("*.json"))) == 4, 10, "both pool workers' records")
        assert pool.stdin is not None and pool.stdout is not None
        pool.stdin.write("terminate\n")
        pool.stdin.flush()
        assert pool.stdout.readline() == "terminated\n"
        killed.send_signal(signal.SIGTERM)
        wait_for(lambda: is_zombie(killed.pid) and is_zombie(exited.pid), 10, "two zombies")
        # The SIGTERM'd and the os._exit'ed processes leave theirs; a terminated pool's
        # workers do too up to 3.12, and from 3.13 on may clean up after themselves first.
        left = len(list(sockets.glob("*.sock")))
        assert left == 4 if sys.version_info < (3, 13) else 2 <= left <= 4
        assert len(list(records.glob("*.json"))) >= left
        assert manhole_cli("list").stdout.startswith("no running manhole")
        assert list(sockets.iterdir()) == []
        assert list(records.iterdir()) == []
    finally:
        pool.kill()
        pool.communicate(timeout=10)


def test_a_live_socket_or_another_file_is_never_removed(runtime_dir: Path, tmp_path: Path) -> None:
    """A stale record names a socket path: a socket someone listens on, or a file that is
    not a socket, stays."""
    folder = runtime_dir / "manhole-ssh"
    folder.mkdir(mode=0o700)
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "live.sock"))
    listening.listen()
    (tmp_path / "plain.sock").write_text("not a socket")
    for number, name in enumerate(("live.sock", "plain.sock")):
        record = {"pid": 999_999_990 + number, "name": "gone", "address": None, "port": None}
        record |= {"socket_path": str(tmp_path / name), "started": 0.0, "host_key": None}
        (folder / f"{record['pid']}.json").write_text(json.dumps(record))
    with listening:
        assert read_records() == []
        assert (tmp_path / "live.sock").exists() and (tmp_path / "plain.sock").exists()


def test_connect_to_another_users_process_says_records_are_per_user(tmp_path: Path) -> None:
    if os.getuid() == 0:
        other = subprocess.Popen(["sleep", "30"], user="nobody")
        pid, user = other.pid, "nobody"
    else:
        other, pid, user = None, 1, "root"
    try:
        refused = manhole_cli("connect", str(pid))
        assert refused.returncode == 2
        assert refused.stderr == (
            f"manhole-ssh: process {pid} belongs to user {user}: the records of running "
            f"manholes are kept per user, and {user}'s are not readable by you. Run it as "
            f"that user: sudo -u {user} manhole-ssh connect {pid}\n"
        )
    finally:
        if other is not None:
            other.kill()
            other.wait()


def test_proxy_reports_a_reset_connection_in_one_line(tmp_path: Path) -> None:
    """The manhole end goes away with data unread (a process killed mid-handshake)."""
    path = tmp_path / "reset.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        proxy = subprocess.Popen(
            [sys.executable, "-m", "manhole_ssh", "proxy", str(path)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        connection, _ = server.accept()
        assert proxy.stdin is not None and proxy.stderr is not None
        proxy.stdin.write(b"SSH-2.0-OpenSSH_9.9\r\n")
        proxy.stdin.flush()
        connection.recv(1, socket.MSG_PEEK)  # it arrived, and is left unread: a reset
        connection.close()
        stderr = proxy.stderr.read().decode()
        assert proxy.wait(timeout=10) == 2
        proxy.stdin.close()
    assert stderr == f"manhole-ssh: connection to {path} lost: Connection reset by peer\n"
