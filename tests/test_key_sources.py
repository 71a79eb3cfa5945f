"""authorized_keys as several files, or as a callable (keys held in a secret store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Keys, run_ssh

import manhole_ssh
from manhole_ssh import ConfigError
from manhole_ssh.config import environment_options


@pytest.fixture(autouse=True)
def _uninstall() -> Iterator[None]:
    yield
    manhole_ssh.uninstall()


def login(port: int, key: Path, source: str) -> str:
    """Log in from ``source`` (so that refusals from one address do not earn it a penalty
    for the next login); what the session printed, or "refused"."""
    result = run_ssh(port, key, "-b", source, "127.0.0.1", "'in'")
    return result.stdout.strip() if result.returncode == 0 else "refused"


def public_line(key: Path) -> str:
    return key.with_suffix(".pub").read_text().strip()


def test_several_files(keys: Keys, tmp_path: Path) -> None:
    second = tmp_path / "team_keys"
    second.write_text(public_line(keys.other_key) + "\n")
    second.chmod(0o600)
    manhole = manhole_ssh.install(
        port=0, authorized_keys=[keys.authorized_keys, second], host_key=keys.host_key
    )
    assert login(manhole.port, keys.client_key, "127.0.4.1") == "'in'"
    assert login(manhole.port, keys.other_key, "127.0.4.2") == "'in'"
    second.write_text("")  # a key removed from either file is refused at the next login
    assert login(manhole.port, keys.other_key, "127.0.4.3") == "refused"
    assert login(manhole.port, keys.client_key, "127.0.4.4") == "'in'"


def test_a_callable_source_is_asked_at_each_login(keys: Keys) -> None:
    store = {"lines": [public_line(keys.client_key)], "fail": False}

    def from_secret_store() -> list[str]:
        if store["fail"]:
            raise TimeoutError("the secret store did not answer")
        return list(store["lines"])

    manhole = manhole_ssh.install(port=0, authorized_keys=from_secret_store, host_key=keys.host_key)
    port = manhole.port
    assert login(port, keys.client_key, "127.0.3.1") == "'in'"
    assert login(port, keys.other_key, "127.0.3.2") == "refused"
    store["lines"] = [public_line(keys.other_key)]
    assert login(port, keys.other_key, "127.0.3.3") == "'in'"
    assert login(port, keys.client_key, "127.0.3.4") == "refused"
    store["fail"] = True  # fails closed: nobody gets in, the manhole keeps serving
    assert login(port, keys.other_key, "127.0.3.5") == "refused"
    store["fail"] = False
    assert login(port, keys.other_key, "127.0.3.6") == "'in'"


def test_a_source_that_fails_or_is_empty_at_install(keys: Keys) -> None:
    def broken() -> str:
        raise RuntimeError("no vault today")

    with pytest.raises(ConfigError, match=r"broken\(\) failed: RuntimeError"):
        manhole_ssh.install(port=0, authorized_keys=broken, host_key=keys.host_key)
    with pytest.raises(ConfigError, match="holds no key"):
        manhole_ssh.install(port=0, authorized_keys=lambda: "", host_key=keys.host_key)
    with pytest.raises(ConfigError, match="names no source"):
        manhole_ssh.install(port=0, authorized_keys=[], host_key=keys.host_key)
    with pytest.raises(ConfigError, match="must be a path, a list of paths, or a callable"):
        manhole_ssh.install(port=0, authorized_keys=[42], host_key=keys.host_key)  # type: ignore[list-item]


def test_several_files_from_the_environment() -> None:
    options = environment_options({"MANHOLE_SSH_AUTHORIZED_KEYS": "/etc/a:/etc/b"})
    assert options == {"authorized_keys": ["/etc/a", "/etc/b"]}
    assert environment_options({"MANHOLE_SSH_AUTHORIZED_KEYS": "/etc/a"}) == {
        "authorized_keys": "/etc/a"
    }
