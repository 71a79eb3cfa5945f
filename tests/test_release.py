"""`make release-check`: what a release is. `python -m build` makes a wheel and an sdist
that `twine check` passes, both of the one version (manhole_ssh.__version__); the wheel,
installed in a fresh venv with nothing else of ours, runs the quickstart."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import Launch
from test_quickstart import follow_the_quickstart

import manhole_ssh

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.release, pytest.mark.timeout(600)]


def nox_supported() -> list[str]:
    """noxfile.py's SUPPORTED: the Pythons make test-all runs the suite on."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "SUPPORTED":
            return list(ast.literal_eval(node.value))
    raise AssertionError("noxfile.py has no SUPPORTED")


def run(*argv: str | Path, cwd: Path = ROOT) -> str:
    completed = subprocess.run(
        [str(part) for part in argv], cwd=cwd, capture_output=True, text=True, timeout=500
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_the_built_wheel_installs_and_runs_the_quickstart(launch: Launch, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT)
    version = manhole_ssh.__version__
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    assert wheel.name == f"manhole_ssh-{version}-py3-none-any.whl"
    assert sdist.name == f"manhole_ssh-{version}.tar.gz"
    run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"manhole_ssh-{version}.dist-info/METADATA").decode()
    assert f"\nVersion: {version}\n" in metadata
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires = ",".join(sorted(project["requires-python"].replace(" ", "").split(",")))
    assert f"\nRequires-Python: {requires}\n" in metadata
    classifiers = set(
        re.findall(r"^Classifier: Programming Language :: Python :: (3\.\d+)$", metadata, re.M)
    )
    assert classifiers == set(nox_supported()), (
        "the classifiers must name exactly make test-all's Pythons"
    )

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True, symlinks=True)
    python = environment / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    assert run(environment / "bin" / "manhole-ssh", "--version") == f"manhole-ssh {version}\n"
    where = run(python, "-c", "import manhole_ssh; print(manhole_ssh.__file__)", cwd=tmp_path)
    assert where.startswith(str(environment)), where  # the wheel's copy, not the checkout
    follow_the_quickstart(str(python), launch, tmp_path)
