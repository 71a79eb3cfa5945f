"""The audit trail loses nothing: a statement is on record before it runs, and its end is
recorded however it ends; failed logins of every kind are recorded; the text log cannot
be forged through a user name or key comment."""

from __future__ import annotations

import asyncio
import logging
import select
import subprocess
from pathlib import Path

import asyncssh
import pytest
from conftest import (
    Host,
    Keys,
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

# A statement that outlives any interrupt: it catches BaseException and keeps running.
STUBBORN = (
    "import time\n"
    "print('running', flush=True)\n"
    "while True:\n"
    "    try:\n"
    "        time.sleep(0.05)\n"
    "    except BaseException:\n"
    "        pass\n"
)


def start_stubborn(host: Host, keys: Keys) -> subprocess.Popen[bytes]:
    """An ssh client running STUBBORN, returned once the statement is running (not only
    on record: a session that ends before its statement begins never runs it)."""
    client = subprocess.Popen(
        ssh_argv(host.port, keys.client_key, "127.0.0.1", STUBBORN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert client.stdout is not None
    ready, _, _ = select.select([client.stdout], [], [], 15)
    assert ready and client.stdout.readline() == b"running\n", "the statement did not start"
    return client


def events_of(audit_file: Path, kind: str) -> list[dict[str, object]]:
    return [event for event in read_events(audit_file) if event["event"] == kind]


def fingerprint_of(key: Path) -> str:
    return str(asyncssh.read_public_key(key.with_suffix(".pub")).get_fingerprint("sha256"))


def test_a_statement_is_on_record_before_it_runs(
    audited_host: tuple[Host, Path], keys: Keys
) -> None:
    host, audit_file = audited_host
    assert exec_code(host.port, keys.client_key, "1+1").stdout == "2\n"
    wait_for(lambda: events_of(audit_file, "session_end"), 10, "the session's end")
    kinds = [e["event"] for e in read_events(audit_file) if str(e["event"]).startswith("s")]
    assert kinds == ["session_start", "statement_start", "statement", "session_end"]
    (start,) = events_of(audit_file, "statement_start")
    (end,) = events_of(audit_file, "statement")
    assert (start["code"], start["fingerprint"]) == ("1+1", fingerprint_of(keys.client_key))
    assert (end["session"], end["statement"]) == (start["session"], start["statement"])
    (session_end,) = events_of(audit_file, "session_end")
    assert (session_end["status"], session_end["ended"]) == (0, "done")


def test_os_exit_leaves_the_statement_on_record(keys: Keys, tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    host = start_host(keys, "--set", f"audit_file={audit_file}")
    try:
        exec_code(host.port, keys.client_key, "import os; os._exit(3)")
        assert host.process.wait(timeout=15) == 3
    finally:
        stop_host(host)
    (start,) = events_of(audit_file, "statement_start")
    assert start["code"] == "import os; os._exit(3)"


def test_a_killed_client_leaves_a_statement_end_and_a_true_session_end(
    audited_host: tuple[Host, Path], keys: Keys
) -> None:
    host, audit_file = audited_host
    client = start_stubborn(host, keys)
    try:
        assert events_of(audit_file, "statement_start")
    finally:
        client.kill()
        client.wait()
    wait_for(lambda: events_of(audit_file, "session_end"), 15, "the session's end")
    (end,) = events_of(audit_file, "statement")
    assert "still running in thread" in str(end["outcome"])
    assert str(end["outcome"]).endswith("when the session ended")
    (session_end,) = events_of(audit_file, "session_end")
    assert str(session_end["ended"]).startswith("client left")
    assert session_end["status"] is None  # no exit status was sent: the client was gone


def test_a_revoked_session_says_so(audited_host: tuple[Host, Path], keys: Keys) -> None:
    """A stubborn statement in a session whose key is revoked: its end is recorded, and
    session_end says the server ended it (status 255), not status 0."""
    host, audit_file = audited_host
    client = start_stubborn(host, keys)
    try:
        fingerprint = fingerprint_of(keys.client_key)
        revoke = f"import manhole_ssh; manhole_ssh.installed().revoke({fingerprint!r})"
        exec_code(host.port, keys.client_key, revoke)
        _, stderr = client.communicate(timeout=15)
        assert "key revoked" in stderr.decode()
        assert client.returncode == 255
    finally:
        client.kill()
        client.wait()

    def first_session_end() -> dict[str, object] | None:
        ends = [e for e in events_of(audit_file, "session_end") if e["session"] == "s1"]
        return ends[0] if ends else None

    wait_for(first_session_end, 15, "the revoked session's end")
    session_end = first_session_end()
    assert session_end is not None
    assert session_end["status"] == 255
    assert "key revoked" in str(session_end["ended"])
    stubborn_end = next(e for e in events_of(audit_file, "statement") if e["session"] == "s1")
    assert "when the session ended" in str(stubborn_end["outcome"])


def test_failed_logins_of_every_kind_are_recorded(
    audited_host: tuple[Host, Path], keys: Keys
) -> None:
    host, audit_file = audited_host
    # No key at all.
    assert run_ssh(host.port, None, "-o", "PubkeyAuthentication=no", "127.0.0.1", "1").returncode
    # The authorized key, with a signature made by another key.
    good = asyncssh.load_keypairs([str(keys.client_key)])[0]
    forger = asyncssh.load_keypairs([asyncssh.generate_private_key("ssh-ed25519")])[0]
    good.sign = forger.sign  # type: ignore[method-assign]

    async def forged_login() -> None:
        async with asyncssh_client(host.port, client_keys=[good], password=None):
            pass

    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(forged_login())
    # Code that does not compile.
    assert exec_code(host.port, keys.client_key, "def (").returncode == 1

    wait_for(lambda: len(events_of(audit_file, "login_failed")) == 2, 10, "two failed logins")
    reasons = {str(e["reason"]) for e in events_of(audit_file, "login_failed")}
    assert reasons == {"left without trying a key", "left after 1 refused key(s)"}
    refused = [e for e in events_of(audit_file, "auth") if e["result"] == "refused"]
    assert [(e["reason"], e["fingerprint"]) for e in refused] == [
        ("bad signature", fingerprint_of(keys.client_key))
    ]
    wait_for(lambda: events_of(audit_file, "statement"), 10, "the statement")
    (statement,) = events_of(audit_file, "statement")
    assert (statement["code"], statement["outcome"]) == ("def (", "syntax error")


def test_control_characters_cannot_forge_a_log_line(
    keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """A key comment with a terminal escape and a bell, and a certificate key ID with a
    newline: escaped in the text log (one record, one line), whole in the JSON trail."""
    comment = "alice\x1b[2K\x07"
    key_id = "eve\nAccepted publickey for root"
    authority = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    certificate = authority.generate_user_certificate(user_key, key_id, principals=["bob"])
    public = keys.client_key.with_suffix(".pub").read_text().split()
    ca_line = authority.export_public_key("openssh").decode().strip()
    keys.authorized_keys.write_text(
        f'{public[0]} {public[1]} {comment}\ncert-authority,principals="bob" {ca_line}\n'
    )
    manhole = manhole_ssh.install(
        port=0, authorized_keys=keys.authorized_keys, host_key=keys.host_key
    )
    try:

        async def login(key: object) -> None:
            async with asyncssh_client(
                manhole.port, username="bob", client_keys=[key], password=None
            ) as connection:
                await connection.run("1")

        with caplog.at_level(logging.INFO, logger="manhole_ssh"):
            asyncio.run(login(str(keys.client_key)))
            asyncio.run(login((user_key, certificate)))
            wait_for(
                lambda: (
                    sum(
                        "session s" in r.getMessage() and "ended" in r.getMessage()
                        for r in caplog.records
                    )
                    == 2
                ),
                10,
                "both sessions' ends in the log",
            )
    finally:
        manhole_ssh.uninstall()
    lines = [r.getMessage() for r in caplog.records if r.name != "manhole_ssh.audit"]
    lines = [line for line in lines if "authorized_keys" not in line]  # (file paths)
    assert all(character not in line for line in lines for character in "\n\r\x1b\x07")
    text = "\n".join(lines)
    assert "(alice\\x1b[2K\\x07)" in text
    assert "eve\\nAccepted publickey for root" in text
    audit_lines = [r.getMessage() for r in caplog.records if r.name == "manhole_ssh.audit"]
    assert any('"identity": "alice\\u001b[2K\\u0007"' in line for line in audit_lines)
