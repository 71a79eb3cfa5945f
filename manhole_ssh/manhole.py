"""The lifecycle of one manhole: bind now, serve on a thread of its own, stop cleanly.

``Manhole.start()`` does in the caller's thread only what can fail because of the
configuration (files, the port) and is cheap. Everything heavy — importing asyncssh and
ptpython, decoding keys — happens on the ``manhole-ssh`` thread, which runs its own asyncio
loop so that the manhole still answers when the host's main thread or loop is stuck.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading

from .auth import precheck_authorized_keys
from .config import Config, ConfigError
from .helpers import MANHOLE_THREAD_PREFIX
from .hostkey import precheck_host_key

__all__ = ["Manhole"]

log = logging.getLogger("manhole_ssh")

_BACKLOG = 64


def _bind(address: str, port: int) -> socket.socket:
    """Bind and listen in the caller's thread, so that a busy port is the caller's error."""
    host = "127.0.0.1" if address == "localhost" else address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another manhole or program "
                f"listens there): pass another port=, or port=0 for any free port"
            ) from None
        raise ConfigError(f"cannot listen on {host} port {port}: {error.strerror}") from None
    sock.setblocking(False)
    return sock


class Manhole:
    """A running (or stopped) manhole. Made by :func:`manhole_ssh.install`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self.error: BaseException | None = None
        self.host_key_fingerprint: str | None = None
        self.port: int = 0
        self.address: str = config.bind_address

    def start(self) -> None:
        """Check the files, bind the port, start the thread. Raises :class:`ConfigError`."""
        config = self.config
        precheck_authorized_keys(config.authorized_keys_path)
        precheck_host_key(config.host_key_path, create_if_missing=config.host_key_is_default)
        if config.log_level is not None:
            logging.getLogger("manhole_ssh").setLevel(config.log_level)
        self._socket = _bind(config.bind_address, config.port)
        self.address, self.port = self._socket.getsockname()[:2]
        self._thread = threading.Thread(
            target=self._thread_main, name=MANHOLE_THREAD_PREFIX, daemon=config.daemon
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the server accepts connections (or has failed); true if it serves."""
        self._ready.wait(timeout)
        return self._ready.is_set() and self.error is None

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every session, and wait for the thread to end."""
        self._stopped.set()
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            try:
                loop.call_soon_threadsafe(stop_requested.set)
            except RuntimeError:
                pass  # the loop already closed
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:
            self.error = error
            log.error("manhole-ssh stopped: %s", error, exc_info=not isinstance(error, ConfigError))
        finally:
            self._ready.set()
            self._stopped.set()
            loop.close()

    async def _serve(self) -> None:
        from .auth import AuthorizedKeys
        from .hostkey import load_host_key
        from .server import ServerSettings, start_server

        config = self.config
        self._stop_requested = asyncio.Event()
        if self._stopped.is_set():
            return
        host_key, created = load_host_key(
            config.host_key_path, create_if_missing=config.host_key_is_default
        )
        self.host_key_fingerprint = host_key.get_fingerprint("sha256")
        if created:
            log.warning(
                "created host key %s (%s)", config.host_key_path, self.host_key_fingerprint
            )
        authorized_keys = AuthorizedKeys(config.authorized_keys_path)
        if not len(authorized_keys):
            log.warning("no usable key in %s yet: every login is refused", config.authorized_keys_path)
        settings = ServerSettings(authorized_keys, config.locals, config.loop)
        assert self._socket is not None
        acceptor = await start_server(self._socket, host_key, settings)
        log.info(
            "manhole-ssh listening on %s port %d (host key %s); connect with: ssh -p %d %s",
            self.address, self.port, self.host_key_fingerprint, self.port, self.address,
        )
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            acceptor.close()
            await acceptor.wait_closed()
