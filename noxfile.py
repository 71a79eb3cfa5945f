"""`make test-all`: the test suite on every CPython from 3.11 to 3.13 found on the machine,
each in a venv of its own (pyenv's interpreters are found without activating pyenv).

3.14 is not claimed: see CONTRIBUTING.md for what it needs first.
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

SUPPORTED = ["3.11", "3.12", "3.13"]  # pyproject's requires-python and classifiers say the same

# pyenv's interpreters, for nox to find as python3.X, without pyenv's shims or `pyenv local`.
_PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
for _folder in sorted(glob.glob(os.path.join(_PYENV, "versions", "3.1[1-3].*", "bin"))):
    os.environ["PATH"] = _folder + os.pathsep + os.environ["PATH"]

FOUND = [version for version in SUPPORTED if shutil.which(f"python{version}")]
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True  # FOUND lists only those present


@nox.session(python=FOUND)
def tests(session: nox.Session) -> None:
    """The whole suite, as `make test` runs it, on one interpreter."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "2", "-p", "no:cacheprovider", *session.posargs)
