"""A session's namespace is released at its end: what the session made is freed at once,
not at the host's next garbage collection; what the service kept still works."""

from __future__ import annotations

import builtins
from collections.abc import Callable

import pytest
from conftest import Host, Keys, Terminal, exec_code, ssh_argv

from manhole_ssh.session.namespace_release import release_namespace

MAKES_A_CYCLE = """
import gc, socket, weakref
gc.disable()  # (the host's collector must not free the session's cycles before we look)
sock = socket.socket()

class Connection:
    def fileno(self):
        return sock.fileno()

connection = Connection()

def helper():
    return connection

state["refs"] = [weakref.ref(sock), weakref.ref(connection), weakref.ref(helper)]
"""

KEEPS_A_FUNCTION = """
import os

def kept():
    return os.getpid()

state["kept"] = kept
"""


def test_what_a_session_made_is_freed_when_it_ends(host: Host, keys: Keys) -> None:
    made = exec_code(host.port, keys.client_key, MAKES_A_CYCLE)
    assert made.returncode == 0, made.stderr
    kept = exec_code(host.port, keys.client_key, KEEPS_A_FUNCTION)
    assert kept.returncode == 0, kept.stderr
    check = "import gc; gc.enable(); ([ref() for ref in state['refs']], state['kept']() > 0)"
    result = exec_code(host.port, keys.client_key, check)
    assert result.stdout == "([None, None, None], True)\n", result.stderr


def test_a_terminal_sessions_namespace_is_freed_too(
    terminals: Callable[..., Terminal], host: Host, keys: Keys
) -> None:
    terminal = terminals(ssh_argv(host.port, keys.client_key, "-tt", "127.0.0.1"))
    terminal.wait_prompt()
    terminal.evaluate("import gc, weakref; gc.disable(); 'one'", "'one'")
    terminal.evaluate("made = object.__new__(type('Made', (), {})); 'two'", "'two'")
    terminal.evaluate("helper = lambda: made; state['ref'] = weakref.ref(made); 'three'", "'three'")
    terminal.send("\x04")  # Ctrl-D
    assert terminal.wait_exit() == 0
    check = "import gc; gc.enable(); state['ref']() is None"
    result = exec_code(host.port, keys.client_key, check)
    assert result.stdout == "True\n", result.stderr


@pytest.mark.parametrize(
    ("code", "released"),
    [
        ("def f(): return 1", True),
        ("class T:\n    def m(self): return super().m()\nclass U(T): pass\nu = U()", True),
        (
            "class T:\n    @property\n    def p(self): return 1\n    @staticmethod\n    def s(): 1",
            True,
        ),
        ("def f(): return 1\nkeep['f'] = f", False),  # the service keeps a function
        ("class T:\n    def m(self): return 1\nkeep['t'] = T()", False),  # an instance
        ("class T:\n    def m(self): return 1\nkeep['T'] = T", False),  # the class
        ("def outer():\n    return lambda: keep\nkeep['inner'] = outer()", False),  # a closure
        ("g = (x for x in range(3))\nkeep['g'] = g", False),  # a generator's frame
        ("import functools\ndef f(): pass\nkeep['p'] = functools.partial(f)", False),
    ],
)
def test_a_namespace_still_in_use_is_left_whole(code: str, released: bool) -> None:
    """Cleared only when no code that would look names up in it can run any more."""
    keep: dict[str, object] = {}
    namespace = {"__name__": "__manhole__", "__builtins__": builtins, "keep": keep}
    exec(code, namespace)
    assert release_namespace(namespace) is released
    assert (namespace == {}) is released
