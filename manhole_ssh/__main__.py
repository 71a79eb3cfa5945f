"""``python -m manhole_ssh`` is the ``manhole-ssh`` command."""

from .cli import main

raise SystemExit(main())
