"""Files the manhole reads or writes: no symlink others could plant, no link swapped in
after the check, and every problem a ConfigError that names the file and the fix."""

from __future__ import annotations

import codecs
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Keys, exec_code

import manhole_ssh
from manhole_ssh import ConfigError
from manhole_ssh.access import file_modes as filemodes


@pytest.fixture(autouse=True)
def uninstalled() -> Iterator[None]:
    yield
    manhole_ssh.uninstall()


@pytest.fixture
def shared_folder(tmp_path: Path) -> Path:
    """A folder like /tmp: anyone may write, sticky."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    return folder


def options(keys: Keys, **changes: object) -> dict[str, object]:
    return {
        "port": 0,
        "authorized_keys": keys.authorized_keys,
        "host_key": keys.host_key,
        **changes,
    }


def test_an_audit_file_link_planted_in_a_shared_folder_is_refused(
    keys: Keys, shared_folder: Path
) -> None:
    """The attack of issue 10: the audit trail appended to the service's host key."""
    planted = shared_folder / "audit.jsonl"
    planted.symlink_to(keys.host_key)
    host_key_before = keys.host_key.read_bytes()
    with pytest.raises(ConfigError, match=f"symlink {planted}.*others can write"):
        manhole_ssh.install(**options(keys, audit_file=planted))
    assert keys.host_key.read_bytes() == host_key_before


@pytest.mark.parametrize("option", ["authorized_keys", "host_key", "revoked_keys"])
def test_a_link_in_a_shared_folder_is_refused_for_every_file(
    keys: Keys, shared_folder: Path, option: str
) -> None:
    real = {"authorized_keys": keys.authorized_keys, "host_key": keys.host_key}
    target = real.get(option)
    if target is None:
        target = keys.folder / "revoked_keys"
        target.write_text("")
        target.chmod(0o600)
    link = shared_folder / option
    link.symlink_to(target)
    with pytest.raises(ConfigError, match=f"symlink {link}"):
        manhole_ssh.install(**options(keys, **{option: link}))


def test_a_recordings_folder_link_in_a_shared_folder_is_refused(
    keys: Keys, shared_folder: Path, tmp_path: Path
) -> None:
    real = tmp_path / "recordings"
    real.mkdir(mode=0o700)
    link = shared_folder / "recordings"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match=f"symlink {link}"):
        manhole_ssh.install(**options(keys, session_recordings=link))


def test_own_links_in_private_folders_keep_working(keys: Keys, tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir(mode=0o700)
    (links / "authorized_keys").symlink_to(keys.authorized_keys)
    (links / "host_key").symlink_to(keys.host_key)
    (links / "audit.jsonl").symlink_to(keys.folder / "audit.jsonl")  # made on open
    manhole = manhole_ssh.install(
        port=0,
        authorized_keys=links / "authorized_keys",
        host_key=links / "host_key",
        audit_file=links / "audit.jsonl",
    )
    assert exec_code(manhole.port, keys.client_key, "'in'").stdout == "'in'\n"
    manhole_ssh.uninstall()
    assert '"event": "auth"' in (keys.folder / "audit.jsonl").read_text()


def test_a_link_swapped_in_after_the_check_is_not_followed(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the path checks out, then the file becomes a link before it is opened."""
    secret = keys.folder / "secret"
    secret.write_text("not for the manhole")
    checked = filemodes.resolve_checked

    def check_then_swap(path: Path, what: str) -> Path:
        real = checked(path, what)
        real.unlink()
        real.symlink_to(secret)
        return real

    monkeypatch.setattr(filemodes, "resolve_checked", check_then_swap)
    with pytest.raises(ConfigError, match="became a symlink"):
        filemodes.read_checked_text(keys.authorized_keys, "authorized_keys")


def test_the_socket_folder_error_says_chmod_go_w(keys: Keys, tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(ConfigError, match=f"chmod go-w {folder}") as error:
        manhole_ssh.install(socket_path=folder / "m.sock", **options(keys, port=None))
    assert "chmod 600" not in str(error.value)


def test_a_readable_recordings_folder_is_told_chmod_700(keys: Keys, tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.raises(ConfigError, match=f"chmod 700 {folder}"):
        manhole_ssh.install(**options(keys, session_recordings=folder))


def test_manhole_ssh_auto_never_stops_the_service(keys: Keys) -> None:
    """Whatever install() raises, the program that imported manhole_ssh.auto goes on."""
    program = (
        "import manhole_ssh\n"
        "def broken(**options): raise RuntimeError('a bug')\n"
        "manhole_ssh.install = broken\n"
        "import manhole_ssh.auto\n"
        "print('service up', manhole_ssh.auto.manhole)\n"
    )
    environment = {**os.environ, "MANHOLE_SSH": "1"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert (result.returncode, result.stdout) == (0, "service up None\n"), result.stderr
    assert "no manhole in this process: unexpected RuntimeError('a bug')" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run the host as another user")
@pytest.mark.parametrize("option", ["authorized_keys", "host_key", "audit_file", "revoked_keys"])
def test_a_link_into_an_unreadable_folder_is_a_config_error(keys: Keys, option: str) -> None:
    """As issue 10 found it: PermissionError out of install(). Run as nobody (in a forked
    child, since the interpreter lives where nobody cannot start it), as root reads any
    folder."""
    nobody = 65534
    base = Path(tempfile.mkdtemp(prefix="manhole-ssh-test-", dir="/tmp"))
    try:
        files = {
            "authorized_keys": keys.authorized_keys.read_bytes(),
            "host_key": keys.host_key.read_bytes(),
            "audit_file": b"",
            "revoked_keys": b"",
        }
        locked = base / "locked"
        locked.mkdir(mode=0o700)
        chosen: dict[str, Path] = {}
        for name, content in files.items():
            path = (locked if name == option else base) / name
            path.write_bytes(content)
            path.chmod(0o600)
            chosen[name] = path
        chosen[option] = base / "link"
        chosen[option].symlink_to(locked / option)
        for path in [base, *base.iterdir(), *locked.iterdir()]:
            os.chown(path, nobody, nobody, follow_symlinks=False)
        locked.chmod(0)
        codecs.lookup("ascii")  # the child cannot import from the interpreter's folder
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover (the child reports through the pipe)
            try:
                os.setgid(nobody)
                os.setuid(nobody)
                manhole_ssh.install(port=0, **chosen)  # type: ignore[arg-type]
                outcome = "installed"
            except ConfigError as error:
                outcome = f"ConfigError: {error}"
            except BaseException as error:
                outcome = repr(error)
            os.write(write_end, outcome.encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            outcome = pipe.read().decode()
        os.waitpid(child, 0)
        assert outcome.startswith("ConfigError: ") and f"{base}/link" in outcome, outcome
    finally:
        (base / "locked").chmod(0o700)
        shutil.rmtree(base)
