"""``python -m manhole_ssh`` is the ``manhole-ssh`` command."""

from .cli.commands import main

raise SystemExit(main())
