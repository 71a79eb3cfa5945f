"""mkdocs hook: the configuration reference (docs/reference/options.md), generated.

Each option of ``manhole_ssh.install()``, in the order of its signature, with its default,
its ``MANHOLE_SSH_*`` variable and the text of its ``:param:`` in the docstring: one
source, so the page cannot drift from the code. ``option_rows`` is the one place that
reads the options; point it at another table if the options move.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

MARKER = "<!-- options-reference -->"


def option_rows() -> list[tuple[str, str, str, str]]:
    """(name, default, environment variable, description) of every option of install()."""
    import manhole_ssh
    from manhole_ssh.config import DEFAULT_BIND_ADDRESS, DEFAULT_PORT, environment_variables

    # install() takes None for "the default", which it resolves in config.py.
    resolved = {
        "port": repr(DEFAULT_PORT),
        "bind_address": repr(DEFAULT_BIND_ADDRESS),
        "authorized_keys": "~/.ssh/authorized_keys",
        "host_key": "$XDG_STATE_HOME/manhole-ssh/ssh_host_ed25519_key",
    }
    variables = set(environment_variables())
    described = _params(inspect.getdoc(manhole_ssh.install) or "")
    rows = []
    for name, parameter in inspect.signature(manhole_ssh.install).parameters.items():
        variable = "MANHOLE_SSH_" + name.upper()
        rows.append(
            (
                name,
                resolved.get(name, repr(parameter.default)),
                f"`{variable}`" if variable in variables else "(none: an object)",
                described.get(name, ""),
            )
        )
    return rows


def _params(docstring: str) -> dict[str, str]:
    """``:param name: text`` (with its indented continuation lines) by name."""
    found: dict[str, str] = {}
    for match in re.finditer(r"^:param (\w+):(.*?)(?=^:|\Z)", docstring, re.M | re.S):
        found[match.group(1)] = " ".join(match.group(2).split())
    return found


def options_table() -> str:
    lines = ["| option | default | environment | what it does |", "| --- | --- | --- | --- |"]
    for name, default, variable, text in option_rows():
        cell = text.replace("|", "\\|")
        lines.append(f"| `{name}` | `{default}` | {variable} | {cell} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, options_table())
