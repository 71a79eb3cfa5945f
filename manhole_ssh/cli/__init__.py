"""The ``manhole-ssh`` command and what it needs alone: listing and connecting to
running manholes, and reaching the children of ``manhole-ssh run``."""
