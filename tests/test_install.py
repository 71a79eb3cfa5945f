"""install(): configuration errors raised in the caller's thread, and a clean stop."""

from __future__ import annotations

import os
import re
import select
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import Host, Keys, exec_code, start_host, stop_host

import manhole_ssh
from manhole_ssh import ConfigError


@pytest.fixture(autouse=True)
def _uninstall() -> object:
    yield
    manhole_ssh.uninstall()


def test_port_in_use(keys: Keys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            manhole_ssh.install(
                port=port, authorized_keys=keys.authorized_keys, host_key=keys.host_key
            )


def test_missing_authorized_keys(keys: Keys, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="does not exist: nobody could log in"):
        manhole_ssh.install(port=0, authorized_keys=missing, host_key=keys.host_key)


def test_empty_authorized_keys(keys: Keys) -> None:
    keys.authorized_keys.write_text("# nobody yet\n")
    with pytest.raises(ConfigError, match="holds no key"):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key)


def test_writable_authorized_keys_refused(keys: Keys) -> None:
    keys.authorized_keys.chmod(0o666)
    with pytest.raises(ConfigError, match=r"writable by group and others.*chmod 600"):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key)


@pytest.mark.parametrize(
    ("mode", "who"), [(0o770, "group"), (0o703, "others"), (0o777, "group and others")]
)
@pytest.mark.parametrize("level", ["its folder", "a folder above"])
def test_authorized_keys_in_a_writable_folder_refused(
    keys: Keys, tmp_path: Path, mode: int, who: str, level: str
) -> None:
    """sshd's StrictModes for folders: whoever can write a folder above authorized_keys
    can replace the file."""
    inner = keys.folder / "inner"
    inner.mkdir(mode=0o700)
    authorized_keys = inner / "authorized_keys"
    keys.authorized_keys.rename(authorized_keys)
    loose = inner if level == "its folder" else keys.folder
    loose.chmod(mode)
    folder = re.escape(str(loose))
    expected = f"is in folder {folder}, which is writable by {who}.*chmod go-w {folder}$"
    with pytest.raises(ConfigError, match=expected):
        manhole_ssh.install(port=0, authorized_keys=authorized_keys, host_key=tmp_path / "no")
    loose.chmod(0o700)
    manhole_ssh.install(port=0, authorized_keys=authorized_keys, host_key=keys.host_key)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to give a folder to another user")
def test_authorized_keys_in_a_folder_owned_by_another_user_refused(keys: Keys) -> None:
    os.chown(keys.folder, 65534, -1)
    with pytest.raises(
        ConfigError, match=f"in folder {re.escape(str(keys.folder))}, owned by uid 65534"
    ):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key)


def test_host_key_in_a_writable_folder_refused(keys: Keys, tmp_path: Path) -> None:
    folder = tmp_path / "host"
    folder.mkdir(mode=0o700)
    host_key = folder / "ssh_host_ed25519_key"
    keys.host_key.rename(host_key)
    folder.chmod(0o775)
    expected = f"host key {re.escape(str(host_key))} is in folder {re.escape(str(folder))}, "
    with pytest.raises(ConfigError, match=expected + "which is writable by group"):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, host_key=host_key)


def test_a_folder_made_writable_later_refuses_logins(keys: Keys) -> None:
    """Checked again at each login: every login is refused while a folder above
    authorized_keys is writable by others, and works again once it is not."""
    host = start_host(keys)
    try:
        assert exec_code(host.port, keys.client_key, "'before'").stdout == "'before'\n"
        keys.folder.chmod(0o777)
        assert exec_code(host.port, keys.client_key, "'in'").returncode == 255
        assert exec_code(host.port, keys.client_key, "'in'").returncode == 255
        keys.folder.chmod(0o700)
        assert exec_code(host.port, keys.client_key, "'again'").stdout == "'again'\n"
        stderr = read_stderr(host)
        assert stderr.count("refusing every login: authorized_keys") == 1, stderr  # said once
        assert f"is in folder {keys.folder}, which is writable by group and others" in stderr
    finally:
        stop_host(host)


def read_stderr(host: Host) -> str:
    """What the host wrote on stderr so far (its log: warnings and errors)."""
    assert host.process.stderr is not None
    descriptor = host.process.stderr.fileno()
    text = b""
    while select.select([descriptor], [], [], 0)[0] and (chunk := os.read(descriptor, 65536)):
        text += chunk
    return text.decode("utf-8", "replace")


def test_readable_host_key_refused(keys: Keys) -> None:
    keys.host_key.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by its owner only"):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key)


def test_named_host_key_must_exist(keys: Keys, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="manhole-ssh keygen"):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, host_key=tmp_path / "k")


def test_keygen_command_writes_a_private_key_and_its_public_half(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "ssh_host_ed25519_key"
    done = subprocess.run(
        [sys.executable, "-m", "manhole_ssh", "keygen", str(key)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = key.with_name(key.name + ".pub").read_text()
    assert public.startswith("ssh-ed25519 ")
    assert "ED25519 SHA256:" in done.stdout
    again = subprocess.run(
        [sys.executable, "-m", "manhole_ssh", "keygen", str(key)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode != 0, "keygen overwrote an existing key"


def test_remote_address_refused(keys: Keys) -> None:
    with pytest.raises(ConfigError, match=r"not a loopback address.*allow_remote=True"):
        manhole_ssh.install(bind_address="0.0.0.0", port=0, authorized_keys=keys.authorized_keys)


def test_remote_address_with_allow_remote(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    """Every interface, said out loud; key authentication as everywhere."""
    manhole = manhole_ssh.install(
        bind_address="0.0.0.0",
        port=0,
        allow_remote=True,
        authorized_keys=keys.authorized_keys,
        host_key=keys.host_key,
    )
    assert manhole.address == "0.0.0.0"
    assert "reachable from other machines (allow_remote=True)" in caplog.text
    assert exec_code(manhole.port, keys.client_key, "'in'").stdout == "'in'\n"
    assert exec_code(manhole.port, keys.other_key, "'in'").returncode == 255
    with pytest.raises(ConfigError, match="not an IP address"):
        manhole_ssh.install(bind_address="example.com", allow_remote=True, port=0)


def test_twice_raises_unless_stopped(keys: Keys) -> None:
    options = {"port": 0, "authorized_keys": keys.authorized_keys, "host_key": keys.host_key}
    first = manhole_ssh.install(**options)
    with pytest.raises(ConfigError, match="already installed"):
        manhole_ssh.install(**options)
    first.stop()
    manhole_ssh.install(**options)


def test_install_is_light_until_the_first_connection(keys: Keys) -> None:
    """Nothing heavy is imported and nothing but one sleeping thread runs before a client comes."""
    code = (
        "import sys, threading, manhole_ssh\n"
        f"m = manhole_ssh.install(port=0, authorized_keys={str(keys.authorized_keys)!r}, "
        f"host_key={str(keys.host_key)!r})\n"
        "heavy = [name for name in ('asyncio', 'asyncssh', 'ptpython', 'cryptography')\n"
        "         if name in sys.modules]\n"
        "print(heavy, sorted(t.name for t in threading.enumerate()))\n"
        "m.stop()\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.splitlines() == ["[] ['MainThread', 'manhole-ssh']", "['MainThread']"]


def test_default_host_key_is_made_on_first_use(
    keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    manhole = manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys)
    assert manhole.host_key_fingerprint is None
    assert exec_code(manhole.port, keys.client_key, "'in'").stdout == "'in'\n"
    key_path = tmp_path / "state" / "manhole-ssh" / "ssh_host_ed25519_key"
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert key_path.parent.stat().st_mode & 0o777 == 0o700
    assert manhole.host_key_fingerprint is not None


def test_stop_leaves_no_thread_descriptor_or_socket(keys: Keys, tmp_path: Path) -> None:
    before = {thread.name for thread in threading.enumerate()}
    descriptors_before = set(os.listdir("/proc/self/fd"))
    manhole = manhole_ssh.install(
        port=0,
        authorized_keys=keys.authorized_keys,
        host_key=keys.host_key,
        socket_path=tmp_path / "manhole.sock",
        bind_address="127.0.0.1",
    )
    assert exec_code(manhole.port, keys.client_key, "'x'").stdout == "'x'\n"
    assert manhole.record_path is not None and manhole.record_path.exists()  # made first
    record_path = manhole.record_path
    manhole_ssh.uninstall()
    assert {thread.name for thread in threading.enumerate()} <= before
    assert set(os.listdir("/proc/self/fd")) == descriptors_before
    assert not (tmp_path / "manhole.sock").exists()
    assert not record_path.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", manhole.port)) != 0


def test_activate_on_signal_then_oneshot(keys: Keys) -> None:
    """Nothing listens or is imported before SIGUSR1; the host's own handler still runs;
    with oneshot the manhole stops after its first session."""
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"""
import os, signal, socket, sys, time, manhole_ssh
calls = []
signal.signal(signal.SIGUSR1, lambda *args: calls.append("host handler"))
m = manhole_ssh.install(port={port}, authorized_keys={str(keys.authorized_keys)!r},
                        host_key={str(keys.host_key)!r}, activate_on="USR1", oneshot=True)
heavy = [n for n in ("asyncio", "asyncssh", "ptpython") if n in sys.modules]
def listening():
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", {port})) == 0
before = listening()
os.kill(os.getpid(), signal.SIGUSR1)
while not listening():
    time.sleep(0.01)
print(heavy, before, calls, flush=True)
while m.running:
    time.sleep(0.01)
print("stopped", listening(), flush=True)
"""
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "[] False ['host handler']\n"
        assert exec_code(port, keys.client_key, "'once'").stdout == "'once'\n"
        assert process.stdout.readline() == "stopped False\n"
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()


def test_activate_on_needs_the_main_thread(keys: Keys) -> None:
    errors: list[BaseException] = []

    def install_in_a_thread() -> None:
        try:
            manhole_ssh.install(
                port=0,
                authorized_keys=keys.authorized_keys,
                host_key=keys.host_key,
                activate_on="USR1",
            )
        except ConfigError as error:
            errors.append(error)

    thread = threading.Thread(target=install_in_a_thread)
    thread.start()
    thread.join(10)
    assert "needs install() to be called from the main thread" in str(errors[0])
    with pytest.raises(ConfigError, match="not a signal name"):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, activate_on="NOPE")


def test_unix_socket_listener(keys: Keys, tmp_path: Path) -> None:
    """socket_path alone: no TCP port, a 0600 socket, ssh through `manhole-ssh proxy`."""
    import stat
    import subprocess

    from conftest import ssh_argv

    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    manhole = manhole_ssh.install(
        socket_path=folder / "manhole-{pid}.sock",
        authorized_keys=keys.authorized_keys,
        host_key=keys.host_key,
        locals={"marker": "via unix"},
    )
    path = folder / f"manhole-{os.getpid()}.sock"
    assert manhole.socket_path == path and manhole.port == 0
    assert stat.S_ISSOCK(path.stat().st_mode) and path.stat().st_mode & 0o777 == 0o600
    proxy = f"ProxyCommand={sys.executable} -m manhole_ssh proxy {path}"
    argv = ssh_argv(22, keys.client_key, "-o", proxy, "manhole", "marker")  # (port unused)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "'via unix'\n"), result.stderr
    manhole.stop()
    assert not path.exists()


def test_unix_socket_refuses_a_live_or_foreign_path(keys: Keys, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    (folder / "file").write_text("not a socket")
    options = {"authorized_keys": keys.authorized_keys, "host_key": keys.host_key}
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        manhole_ssh.install(socket_path=folder / "file", **options)
    first = manhole_ssh.install(socket_path=folder / "m.sock", **options)
    with pytest.raises(ConfigError, match="in use by a running program"):
        manhole_ssh.Manhole(first.config).start()
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o777)
    open_folder.chmod(0o777)
    first.stop()
    with pytest.raises(ConfigError, match="writable by group and others"):
        manhole_ssh.install(socket_path=open_folder / "m.sock", **options)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to connect as another user")
def test_unix_socket_refuses_other_users_before_ssh(
    keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Even if the socket's mode let another user connect, its uid is refused at once."""
    import json
    import subprocess
    import tempfile

    caplog.set_level("INFO", logger="manhole_ssh.audit")
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # a folder the other user can reach
    folder.chmod(0o755)
    path = folder / "m.sock"
    manhole_ssh.install(
        socket_path=path, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    path.chmod(0o666)  # a mistake the peer-uid check must survive
    as_nobody = (
        "import os, socket\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"s = socket.socket(socket.AF_UNIX); s.connect({str(path)!r}); s.settimeout(10)\n"
        "while s.recv(4096): pass\n"
        "print('closed')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", as_nobody], capture_output=True, text=True, timeout=30
    )
    assert result.stdout == "closed\n", result.stderr
    events = [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "manhole_ssh.audit"
    ]
    refused = [event for event in events if event["event"] == "connect" and event["refused"]]
    assert "uid 65534 is neither" in refused[0]["refused"]
    manhole_ssh.uninstall()
    folder.rmdir()


FORK_SCRIPT = """
import os, sys, time, manhole_ssh
def say(*words):  # one write per line: parent and child share the pipe
    os.write(1, (" ".join(map(str, words)) + "\\n").encode())
manhole = manhole_ssh.install(port=0, authorized_keys={keys!r}, host_key={host_key!r},
                              on_fork={on_fork!r})
print("parent", os.getpid(), manhole.port, flush=True)
sys.stdin.readline()  # the test has been in once: the server and its loop are running
child = os.fork()
if child == 0:
    own = manhole_ssh.installed()
    say("child", os.getpid(), own.port if own else 0)
    time.sleep(60)
    os._exit(0)
manhole_ssh.uninstall()
say("parent", "stopped")
os.waitpid(child, 0)
"""


@pytest.mark.parametrize("on_fork", ["stop", "restart"])
def test_fork(keys: Keys, on_fork: str) -> None:
    """A forked child holds no inherited port (the parent's stop frees it), and with
    on_fork="restart" it serves on a port of its own."""
    import subprocess

    script = FORK_SCRIPT.format(
        keys=str(keys.authorized_keys), host_key=str(keys.host_key), on_fork=on_fork
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        _, parent_pid, parent_port = process.stdout.readline().split()
        assert exec_code(int(parent_port), keys.client_key, "'parent'").stdout == "'parent'\n"
        process.stdin.write("go\n")
        process.stdin.flush()
        output = [process.stdout.readline() for _ in range(2)]
        lines = dict(line.split(" ", 1) for line in output)
        assert set(lines) == {"child", "parent"}, output
        child_pid, child_port = lines["child"].split()
        assert lines["parent"] == "stopped\n"
        with socket.socket() as probe:  # nobody holds the parent's port any more
            assert probe.connect_ex(("127.0.0.1", int(parent_port))) != 0
        if on_fork == "stop":
            assert child_port == "0"
        else:
            pid = exec_code(int(child_port), keys.client_key, "import os; os.getpid()").stdout
            assert pid.strip() == child_pid != parent_pid
    finally:
        subprocess.run(["pkill", "-P", str(process.pid)], check=False)
        process.kill()
        process.wait()
