"""docs/architecture.md lists every module of the package, with its job."""

from __future__ import annotations

from pathlib import Path

import manhole_ssh

PACKAGE = Path(manhole_ssh.__file__).parent
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def test_every_module_is_in_the_architecture() -> None:
    text = ARCHITECTURE.read_text()
    modules = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent.name in ("manhole_ssh", "_compat", "debug")
    )
    missing = [module for module in modules if f"- `{module}`:" not in text]
    assert not missing, f"docs/architecture.md does not list {missing}"
