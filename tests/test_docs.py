"""The pages and the files they show: every recipe a test runs is included in a page by a
well-formed snippet line (a mangled one is left as text by mkdocs, silently), and the
configuration reference lists every option of install() with its variable."""

from __future__ import annotations

import importlib.util
import inspect
import re

from conftest import RECIPES

import manhole_ssh
from manhole_ssh.config import environment_variables

DOCS = RECIPES.parent
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')


def test_every_recipe_file_is_shown_by_a_well_formed_snippet() -> None:
    included: set[str] = set()
    for page in DOCS.rglob("*.md"):
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if "8<" in line or "8 <" in line:
                match = SNIPPET.match(line)
                assert match, f"{page}:{number}: not a snippet line: {line!r}"
                included.add(match.group("path"))
    root = DOCS.parent
    recipes = {
        str(path.relative_to(root))
        for path in RECIPES.rglob("*")
        if path.is_file() and path.suffix != ".md" and "__pycache__" not in path.parts
    }
    shown_elsewhere = {  # a whole project: the page shows its one file that matters
        "docs/recipes/django/manage.py",
        "docs/recipes/django/djapp/__init__.py",
        "docs/recipes/django/djapp/settings.py",
        "docs/recipes/django/djapp/urls.py",
    }
    assert recipes - shown_elsewhere <= included, recipes - shown_elsewhere - included
    assert all((root / path).is_file() for path in included if path != "CHANGELOG.md")


def test_the_options_reference_lists_every_option_and_variable() -> None:
    spec = importlib.util.spec_from_file_location(
        "options_reference", DOCS / "hooks" / "options_reference.py"
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    table = hook.options_table()
    for name in inspect.signature(manhole_ssh.install).parameters:
        assert f"| `{name}` |" in table
    for variable in environment_variables():
        assert f"`{variable}`" in table
    undocumented = [row[0] for row in hook.option_rows() if not row[3]]
    assert not undocumented, f"options without a :param: in install()'s docstring: {undocumented}"
