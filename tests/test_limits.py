"""The door's limits and its audit trail, against the running server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from conftest import (
    Host,
    Keys,
    Terminal,
    asyncssh_client,
    exec_code,
    read_events,
    run_ssh,
    ssh_argv,
    start_host,
    stop_host,
    wait_for,
)

import manhole_ssh

OpenTerminal = Callable[..., Terminal]


def test_audit_trail_records_logins_sessions_and_statements(
    audited_host: tuple[Host, Path], keys: Keys
) -> None:
    host, audit_file = audited_host
    assert exec_code(host.port, keys.client_key, "1+1").stdout == "2\n"
    assert exec_code(host.port, keys.client_key, "1/0").returncode == 1
    assert exec_code(host.port, keys.other_key, "1").returncode == 255

    def statements() -> list[dict[str, object]]:
        return [event for event in read_events(audit_file) if event["event"] == "statement"]

    wait_for(lambda: len(statements()) == 2, 10, "two statements in the audit file")
    assert audit_file.stat().st_mode & 0o777 == 0o600
    first, second = statements()
    assert (first["code"], first["outcome"], first["identity"]) == (
        "1+1",
        "result int",
        "alice@test",
    )
    assert (second["code"], second["outcome"]) == ("1/0", "exception ZeroDivisionError")
    events = read_events(audit_file)
    kinds = [event["event"] for event in events]
    assert {"connect", "auth", "session_start", "session_end"} <= set(kinds)
    accepted = [e for e in events if e["event"] == "auth" and e["result"] == "accepted"]
    refused = [e for e in events if e["event"] == "auth" and e["result"] == "refused"]
    assert accepted[0]["key_type"] == "ED25519" and accepted[0]["identity"] == "alice@test"
    other_public = asyncssh.read_public_key(keys.other_key.with_suffix(".pub"))
    assert refused[0]["fingerprint"] == other_public.get_fingerprint("sha256")
    ends = [e for e in events if e["event"] == "session_end"]
    assert [e["status"] for e in ends] == [0, 1]


class _KeyByKey(asyncssh.SSHClient):
    """A client that offers its keys one at a time, counting how many it got to offer."""

    def __init__(self, keys: list[asyncssh.SSHKey]) -> None:
        self._keys = list(keys)
        self.offered = 0

    def public_key_auth_requested(self) -> asyncssh.SSHKey | None:
        if not self._keys:
            return None
        self.offered += 1
        return self._keys.pop(0)


def test_max_auth_tries_cuts_a_connection(audited_host: tuple[Host, Path], keys: Keys) -> None:
    """300 wrong keys on one connection: the 6th refusal (max_auth_tries) cuts it; the
    client never gets to offer the rest, and the host serves the next login."""
    host, audit_file = audited_host
    wrong_keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(300)]
    client = _KeyByKey(wrong_keys)

    async def try_keys() -> None:
        async with asyncssh_client(
            host.port, client_factory=lambda: client, client_keys=None, password=None
        ):
            pass

    with pytest.raises((asyncssh.Error, OSError)) as cut:  # cut, or cut while it writes
        asyncio.run(try_keys())
    if isinstance(cut.value, asyncssh.DisconnectError):
        assert cut.value.reason == "Too many authentication failures (6)"
    assert 6 <= client.offered <= 7, client.offered  # (one more may be on its way)
    refused = [e for e in read_events(audit_file) if e.get("result") == "refused"]
    assert len(refused) == 6  # max_auth_tries, then the connection was cut
    assert exec_code(host.port, keys.client_key, "'next'").stdout == "'next'\n"


def test_max_sessions_per_connection(host: Host, keys: Keys) -> None:
    """300 session opens on one connection, all at once: 10 (max_sessions) are opened,
    the other 290 refused; closing the 10 makes room again, and nothing is left over."""

    async def open_sessions() -> tuple[int, set[str], str]:
        async with asyncssh_client(
            host.port,
            client_keys=[str(keys.client_key)],
        ) as connection:
            results = await asyncio.gather(
                *(connection.create_process() for _ in range(300)),  # scripts, waiting
                return_exceptions=True,
            )
            opened = [r for r in results if isinstance(r, asyncssh.SSHClientProcess)]
            refusals = {
                r.reason if isinstance(r, asyncssh.ChannelOpenError) else repr(r)
                for r in results
                if not isinstance(r, asyncssh.SSHClientProcess)
            }
            for process in opened:
                process.stdin.write_eof()
                await process.wait()
            again = await connection.run("'room again'")
            return len(opened), refusals, f"{again.stdout}"

    count, refusals, again = asyncio.run(open_sessions())
    assert count == 10
    assert refusals == {"10 sessions are open on this connection (max_sessions)"}
    assert again == "'room again'\n"
    workers = "sum('manhole-ssh worker' in t.name for t in __import__('threading').enumerate())"
    assert exec_code(host.port, keys.client_key, workers).stdout == "1\n"  # this one only


def test_one_source_cannot_hold_every_login_slot(host: Host, keys: Keys) -> None:
    """Idle unauthenticated connections from 127.0.0.2 are capped (per_source_max_startups);
    a login from 127.0.0.1 still gets in."""

    def connect_from(address: str) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", host.port), 10, (address, 0))
        assert connection.recv(64).startswith(b"SSH-2.0-manhole_ssh")
        return connection

    idle = [connect_from("127.0.0.2") for _ in range(3)]
    try:
        extra = socket.create_connection(("127.0.0.1", host.port), 10, ("127.0.0.2", 0))
        with extra:
            extra.settimeout(10)
            received = b""
            while chunk := extra.recv(4096):  # the server drops it: EOF, not a timeout
                received += chunk
        assert exec_code(host.port, keys.client_key, "'from elsewhere'").stdout == (
            "'from elsewhere'\n"
        )
        for connection in idle:  # the first three are still open
            connection.setblocking(False)
            with pytest.raises(BlockingIOError):
                connection.recv(1)
    finally:
        for connection in idle:
            connection.close()


def test_idle_timeout_spares_running_code(keys: Keys, terminals: OpenTerminal) -> None:
    host = start_host(keys, "--set", "idle_timeout=3")
    try:
        # Import ptpython first, so that the terminal session's start is quick even on a
        # loaded machine (its idle clock runs from the start).
        assert exec_code(host.port, keys.client_key, "import ptpython.repl").returncode == 0
        busy = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        busy.wait_prompt()
        busy.evaluate("import time; time.sleep(4); 'slept through'", "'slept through'")
        busy.expect("session ended: idle for 3 s (idle_timeout)")
        assert busy.wait_exit() == 1
        assert host.alive()
    finally:
        stop_host(host)


def test_session_timeout(keys: Keys, terminals: OpenTerminal) -> None:
    host = start_host(keys, "--set", "session_timeout=1.5")
    try:
        terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_prompt()
        terminal.send("while True: pass\r\r")
        terminal.expect("session ended: session_timeout of 1.5 s reached")
        assert terminal.wait_exit() == 1
        only_this_worker = "sum('worker' in t.name for t in __import__('threading').enumerate())"
        wait_for(
            lambda: exec_code(host.port, keys.client_key, only_this_worker).stdout == "1\n",
            10,
            "the timed-out session's worker to end",
        )
    finally:
        stop_host(host)


def test_a_failing_source_is_penalized_while_others_get_in(
    audited_host: tuple[Host, Path], keys: Keys
) -> None:
    host, audit_file = audited_host
    wrong_key = asyncssh.generate_private_key("ssh-ed25519")

    async def login_from(address: str, key: object) -> str:
        async with asyncssh_client(
            host.port,
            local_addr=(address, 0),
            client_keys=[key],
            password=None,
        ) as connection:
            return str((await connection.run("'in'")).stdout)

    for _ in range(3):  # three failed connections: the third earns a penalty
        with pytest.raises(asyncssh.PermissionDenied):
            asyncio.run(login_from("127.0.0.2", wrong_key))
    wait_for(
        lambda: any(e["event"] == "penalty" for e in read_events(audit_file)), 10, "the penalty"
    )
    with pytest.raises((asyncssh.Error, OSError)):  # even the right key, from there, for now
        asyncio.run(login_from("127.0.0.2", str(keys.client_key)))
    assert asyncio.run(login_from("127.0.0.1", str(keys.client_key))) == "'in'\n"
    penalty = next(e for e in read_events(audit_file) if e["event"] == "penalty")
    assert (penalty["source"], penalty["seconds"]) == ("127.0.0.2", 5.0)


def _resources() -> tuple[int, int, int]:
    """This process's threads (but the manhole's executor pool, which is bounded), open
    descriptors and RSS in kB."""
    threads = [t for t in threading.enumerate() if "manhole-ssh executor" not in t.name]
    descriptors = len(os.listdir("/proc/self/fd"))
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return len(threads), descriptors, int(status["VmRSS"].split()[0])


def _no_worker_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("manhole-ssh worker")]


def _only_the_listener(port: int) -> bool:
    """No socket of this process is connected to or from ``port``: only the listener is
    left (a socket that has been closed has no inode in /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        ports = {int(local.split(":")[1], 16), int(remote.split(":")[1], 16)}
        if port in ports and state != "0A" and inode != "0":  # 0A: LISTEN
            return False
    return True


def _settled(port: int) -> bool:
    return _no_worker_threads() and _only_the_listener(port)


@pytest.mark.slow
@pytest.mark.timeout(180)  # 28 s alone; hit 60 s twice on a loaded 2-core machine
def test_many_sessions_leave_nothing_behind(keys: Keys) -> None:
    """1000 sessions one after another (exec, script, terminal) leak no thread, descriptor
    or memory (10 MB at most) in the host (here, this process)."""
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )

    async def sessions(count: int) -> None:
        async with asyncssh_client(
            manhole.port,
            client_keys=[str(keys.client_key)],
        ) as connection:
            for number in range(count):
                if number % 3 == 0:
                    result = await connection.run(f"{number} * 2")
                    assert result.stdout == f"{number * 2}\n"
                elif number % 3 == 1:
                    result = await connection.run(input=f"print({number})\n")
                    assert result.stdout == f"{number}\n"
                else:
                    process = await connection.create_process(term_type="xterm")
                    await process.stdout.readuntil(">>>")
                    process.stdin.write("exit()\r")
                    await process.wait()

    try:
        asyncio.run(sessions(30))  # warm up: imports, caches, the executor pool
        wait_for(lambda: _settled(manhole.port), 10, "the sessions and connection to end")
        threads, descriptors, rss = _resources()
        asyncio.run(sessions(1000))
        wait_for(lambda: _settled(manhole.port), 10, "the sessions and connection to end")
        after_threads, after_descriptors, after_rss = _resources()
    finally:
        manhole_ssh.uninstall()
    assert (after_threads, after_descriptors) == (threads, descriptors)
    assert after_rss - rss < 10 * 1024, f"RSS grew by {after_rss - rss} kB"


def _idle_connection(port: int, source: str) -> socket.socket:
    """A connection from ``source`` that never logs in, once the server has greeted it."""
    connection = socket.create_connection(("127.0.0.1", port), 10, (source, 0))
    connection.settimeout(10)
    assert connection.recv(64).startswith(b"SSH-2.0-manhole_ssh")
    return connection


def _dropped(port: int, source: str) -> bool:
    """Connect from ``source``: true if the server ends the connection at once (it greets
    every connection first, then drops what is over the limits)."""
    with socket.create_connection(("127.0.0.1", port), 10, (source, 0)) as connection:
        connection.settimeout(10)
        try:
            while connection.recv(4096):
                pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            return False
    return True


def test_max_startups_as_a_number_is_a_hard_cap(keys: Keys) -> None:
    host = start_host(keys, "--set", "max_startups=2", "--set", "per_source_max_startups=10")
    idle = [_idle_connection(host.port, source) for source in ("127.0.0.2", "127.0.0.3")]
    try:
        assert all(_dropped(host.port, source) for source in ("127.0.0.4", "127.0.0.5"))
    finally:
        for connection in idle:
            connection.close()
    try:  # once the idle ones are gone, logins work again
        wait_for(
            lambda: exec_code(host.port, keys.client_key, "'in'").stdout == "'in'\n",
            10,
            "a login after the idle connections closed",
        )
    finally:
        stop_host(host)


def test_max_startups_drops_at_random_between_start_and_full(keys: Keys) -> None:
    """sshd's "start:rate:full": with 2 connections waiting, half of the new ones are
    dropped; 30 logins from 30 sources must see both outcomes."""
    host = start_host(keys, "--set", "max_startups=2:50:100", "--set", "per_source_max_startups=10")
    idle = [_idle_connection(host.port, source) for source in ("127.0.0.2", "127.0.0.3")]
    try:
        logged_in = [
            run_ssh(
                host.port, keys.client_key, "-b", f"127.0.1.{10 + n}", "127.0.0.1", "1"
            ).returncode
            == 0
            for n in range(30)
        ]
        assert 0 < sum(logged_in) < 30, logged_in
    finally:
        for connection in idle:
            connection.close()
        stop_host(host)


@pytest.mark.parametrize("value", ["10:30", "0", "30:30:10", "10:0:100", "a:b:c", True, 0])
def test_max_startups_values_are_checked(keys: Keys, value: object) -> None:
    import manhole_ssh

    with pytest.raises(manhole_ssh.ConfigError, match="max_startups must be"):
        manhole_ssh.install(port=0, authorized_keys=keys.authorized_keys, max_startups=value)  # type: ignore[arg-type]


def test_terminal_sessions_are_recorded_as_asciicast(
    keys: Keys, terminals: OpenTerminal, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    host = start_host(keys, "--set", f"session_recordings={folder}")
    try:
        assert folder.stat().st_mode & 0o777 == 0o700
        terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
        terminal.wait_prompt()
        terminal.evaluate("6 * 7", "42")
        terminal.resize(90, 20)
        terminal.send("\x04")
        terminal.wait_exit()
        assert exec_code(host.port, keys.client_key, "'exec is not recorded'").returncode == 0
        (cast,) = folder.glob("*.cast")
        assert cast.stat().st_mode & 0o777 == 0o600
        header, *events = (json.loads(line) for line in cast.read_text().splitlines())
        assert (header["version"], header["width"], header["height"]) == (2, 100, 30)
        assert "alice@test" in header["title"]
        shown = "".join(text for _, kind, text in events if kind == "o")
        assert "Logged in as alice@test" in shown and "42" in shown
        assert [text for _, kind, text in events if kind == "r"] == ["90x20"]
        times = [elapsed for elapsed, _, _ in events]
        assert times == sorted(times)
    finally:
        stop_host(host)


def test_a_recordings_folder_others_can_read_is_refused(keys: Keys, tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(manhole_ssh.ConfigError, match="session_recordings folder"):
        manhole_ssh.install(
            port=0,
            authorized_keys=keys.authorized_keys,
            host_key=keys.host_key,
            session_recordings=folder,
        )
