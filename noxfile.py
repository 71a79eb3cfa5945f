"""`make test-all`: the test suite on every supported CPython found on the machine, each in
a venv of its own (pyenv's interpreters are found without activating pyenv).

A Python in CANDIDATES is run by `nox -s candidate` and not claimed until the suite passes
there; none is, today. CONTRIBUTING.md says what 3.14 needs first.
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

SUPPORTED = ["3.11", "3.12", "3.13"]  # pyproject's requires-python and classifiers say the same
CANDIDATES: list[str] = []  # run by `nox -s candidate`; claimed once the suite passes there

# pyenv's interpreters, for nox to find as python3.X, without pyenv's shims or `pyenv local`.
_PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
for _folder in sorted(glob.glob(os.path.join(_PYENV, "versions", "3.1[1-4].*", "bin"))):
    os.environ["PATH"] = _folder + os.pathsep + os.environ["PATH"]

FOUND = [version for version in SUPPORTED if shutil.which(f"python{version}")]
FOUND_CANDIDATES = [version for version in CANDIDATES if shutil.which(f"python{version}")]
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True  # FOUND lists only those present


@nox.session(python=FOUND)
def tests(session: nox.Session) -> None:
    """The whole suite, as `make test` runs it, on one interpreter."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "2", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=FOUND_CANDIDATES)
def candidate(session: nox.Session) -> None:
    """The suite on a Python not yet claimed (not part of `make test-all`)."""
    tests(session)
