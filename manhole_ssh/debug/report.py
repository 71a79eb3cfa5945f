"""What every debugging helper returns: text for a person, data for a script.

A helper's result prints as a readable report in the REPL and in exec mode (its
``repr``), and ``.json()`` gives the same facts as JSON for a script (``.data`` holds
them as plain lists, dicts, strings and numbers). A report holds no reference to the
objects it describes (frames, tasks, the host's objects): only their descriptions.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JsonText", "Report"]


class JsonText(str):
    """A JSON document that shows as itself, so that ``ssh host 'tasks().json()'`` prints
    JSON a tool like ``jq`` reads (a plain string would show quoted, as its repr)."""

    def __repr__(self) -> str:
        return str(self)


class Report:
    """A helper's result: ``repr`` is the text, :attr:`data` the facts, ``json()`` both."""

    def __init__(self, data: Any, text: str) -> None:
        self.data = data
        self._text = text

    def json(self, indent: int | None = None) -> JsonText:
        """The facts as a JSON document (what a script should parse)."""
        return JsonText(json.dumps(self.data, default=str, indent=indent, ensure_ascii=False))

    def __repr__(self) -> str:
        return self._text

    __str__ = __repr__

    def __pt_repr__(self) -> list[tuple[str, str]]:
        """ptpython shows this as plain text (not highlighted as if it were Python code)."""
        return [("", self._text)]
