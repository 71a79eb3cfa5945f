"""The package's exceptions, in a leaf module that imports nothing of the package.

Kept apart (as asyncssh keeps its errors) so that any module can raise them without
importing the module that owns an option: this is what ends the old import cycle
``auth -> config -> filemodes -> config``.
"""

__all__ = ["AddressInUse", "ConfigError", "DiscoveryError", "KrlError"]


class ConfigError(Exception):
    """An option or a file it names cannot be used; the message says how to fix it."""


class AddressInUse(ConfigError):
    """The port or socket path asked for is held by another program (or another manhole)."""


class DiscoveryError(Exception):
    """The runtime folder cannot be used safely; the message says why."""


class KrlError(ValueError):
    """The KRL cannot be read; the message says where and why."""
