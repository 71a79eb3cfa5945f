"""The lifecycle of one manhole: bind now, serve on a thread of its own, stop cleanly.

``Manhole.start()`` does in the caller's thread only what can fail because of the
configuration (files, the port) and is cheap. Then the ``manhole-ssh`` thread waits in
``select()`` on the listening socket, having imported nothing: asyncio, asyncssh and
ptpython cost tens of megabytes, which a host that is never entered should not pay. At the
first connection the thread imports them and runs its own asyncio loop, so that the manhole
still answers when the host's main thread or loop is stuck.
"""

from __future__ import annotations

import _socket
import atexit
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .access.authorized_keys import describe_sources, precheck_authorized_keys
from .access.file_modes import check_opened, resolve_checked
from .access.host_key import fingerprint_of, host_public_key, precheck_host_key, public_key_line
from .activation import ActivationSignal, WakeupPipe
from .config import COMMAND_LINE, Config, spelled
from .errors import AddressInUse, ConfigError
from .green import originals
from .server.listeners import bind_tcp, bind_unix
from .session.namespace import MANHOLE_THREAD_PREFIX
from .workers import reloader_parent, several_reason

if TYPE_CHECKING:
    import asyncio

    import asyncssh

    from .audit import AuditFile
    from .server.ssh_server import ServerState

__all__ = ["Manhole", "install_once", "installed", "uninstall"]

log = logging.getLogger("manhole_ssh")


def open_audit_file(path: Path) -> AuditFile:
    """Open (append) the audit file, refusing one that others can read or write."""
    from .audit import AuditFile

    real = resolve_checked(path, "audit file")  # no link others could have planted
    try:
        audit_file = AuditFile(real)  # O_NOFOLLOW: nor one swapped in since
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConfigError(
                f"audit file {path} became a symlink while it was being opened: refused; "
                f"check who can write {real.parent}"
            ) from None
        raise ConfigError(f"audit file {path} cannot be opened: {error.strerror}") from None
    try:
        check_opened(audit_file.handler.stream.fileno(), real, "audit file", private=True)
    except ConfigError:
        audit_file.detach()
        raise
    audit_file.attach()
    return audit_file


def _close_loop_descriptors(loop: asyncio.AbstractEventLoop) -> None:
    """Close, through the objects that own them (so that nothing closes them twice later),
    the client connections, self-pipe and selector of an asyncio selector loop.

    This reads attributes private to asyncio's selector loops; on another loop it closes
    what it recognises and nothing else.
    """
    sockets = [
        getattr(transport, "_sock", None)
        for transport in list(getattr(loop, "_transports", {}).values())
    ]
    sockets += [getattr(loop, "_ssock", None), getattr(loop, "_csock", None)]
    for sock in sockets:
        if isinstance(sock, _socket.socket):  # a real socket (green ones wrap one)
            sock.close()
    selector = getattr(loop, "_selector", None)
    if selector is not None:
        with contextlib.suppress(OSError):
            selector.close()


class Manhole:
    """A running (or stopped) manhole. Made by :func:`manhole_ssh.install`.

    ``port`` and ``address`` are where it listens (``port`` is the real one when 0 was
    asked); ``host_key_fingerprint`` is what clients will be shown (``None`` until the
    default key is made at the first connection); ``error`` is why the server thread
    stopped, if it failed.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.port: int = 0
        self.address: str = config.bind_address
        self.host_key_fingerprint: str | None = None
        self.error: BaseException | None = None
        self.socket_path: Path | None = None
        self.record_path: Path | None = None  # this manhole's discovery record
        self._listeners: list[socket.socket] = []
        self._thread: originals.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._stopped = originals.new_event()
        self._stop_timeout = 5.0
        self._audit_file: AuditFile | None = None
        self._revoked: set[str] = set()  # fingerprints given to revoke()
        self._settings: ServerState | None = None
        self._activation = ActivationSignal()
        self._started = 0.0
        self._host_public_key: bytes | None = None
        self._wakeup = WakeupPipe()  # wakes the dormant thread

    def start(self) -> None:
        """Check the files, bind the port, start the thread. Raises :class:`ConfigError`."""
        config = self.config
        precheck_authorized_keys(config.authorized_keys)
        if config.revoked_keys_path is not None:
            from .access.revocation import precheck_revoked_keys

            precheck_revoked_keys(config.revoked_keys_path)
        precheck_host_key(config.host_key_path, create_if_missing=config.host_key_is_default)
        if config.log_level is not None:
            logging.getLogger("manhole_ssh").setLevel(config.log_level)
        if config.host_key_path.exists():
            self._host_public_key = host_public_key(config.host_key_path)
            self.host_key_fingerprint = fingerprint_of(self._host_public_key)
        if config.session_recordings is not None:
            from .session.recording import prepare_recordings_folder

            prepare_recordings_folder(config.session_recordings)
        if config.audit_file is not None:
            self._audit_file = open_audit_file(config.audit_file)
        _import_early_if_green()
        try:
            if config.activate_on is None:
                self._listen()
            else:
                self._arm_signal(config.activate_on)
        except ConfigError:
            if self._audit_file is not None:
                self._audit_file.detach()
            raise
        self._wakeup.open()
        # A real OS thread even in a gevent or eventlet host (see green/originals.py).
        self._thread = originals.Thread(
            target=self._thread_main, name=MANHOLE_THREAD_PREFIX, daemon=config.daemon
        )
        self._thread.start()

    def decline(self, reason: str) -> None:
        """Do not listen in this process (a reloader's parent, a worker whose port a
        sibling holds): ``running`` stays false and ``error`` says why."""
        self.error = ConfigError(reason)
        self._stopped.set()

    def where(self) -> str:
        """Where this manhole listens, as a person would say it."""
        places = []
        if self.config.listen_tcp and self.port:
            places.append(f"{self.address} port {self.port}")
        if self.socket_path is not None:
            places.append(f"socket {self.socket_path}")
        if places:
            return " and ".join(places)
        if self._activation.armed:
            return f"nothing yet: it waits for {self._signal_name()}"
        return "nothing"

    def _listen(self) -> None:
        config = self.config
        host_key = self.host_key_fingerprint or (
            f"{config.host_key_path}, made at the first connection"
        )
        if config.listen_tcp:
            tcp = bind_tcp(config.bind_address, config.port)
            self._listeners.append(tcp)
            self.address, self.port = tcp.getsockname()[:2]
            if config.exposed:
                log.warning(
                    "manhole-ssh listens on %s port %d, reachable from other machines "
                    "(allow_remote=True): whoever holds a key in %s can run any code in "
                    "process %d",
                    self.address,
                    self.port,
                    describe_sources(config.authorized_keys),
                    os.getpid(),
                )
            # (No ready-made ssh command: without the right -i it fails for most users.)
            log.info(
                "manhole-ssh listening on %s port %d in process %d (host key %s); "
                "`manhole-ssh connect %d` enters it",
                self.address,
                self.port,
                os.getpid(),
                host_key,
                os.getpid(),
            )
        if config.socket_path is not None:
            try:
                self._listeners.append(bind_unix(config.socket_path))
            except ConfigError:
                self._close_listeners()
                raise
            self.socket_path = config.socket_path
            log.info(
                "manhole-ssh listening on %s (host key %s); connect with: "
                'ssh -o ProxyCommand="manhole-ssh proxy %s" manhole',
                self.socket_path,
                host_key,
                self.socket_path,
            )
        self._started = time.time()
        self._publish()
        atexit.register(self._close_listeners)  # the process may end without stop()

    def _publish(self, waiting_for: str | None = None) -> None:
        """Write (or rewrite) the discovery record that ``manhole-ssh list`` reads (one that
        waits for its activation signal says so). Not being listed is no reason to refuse to
        serve: a failure is only logged."""
        from .discovery import DiscoveryError, write_record

        public_key = self._host_public_key
        listening = waiting_for is None
        try:
            self.record_path = write_record(
                address=self.address if self.config.listen_tcp and listening else None,
                port=self.port if self.config.listen_tcp and listening else None,
                socket_path=self.socket_path,
                host_key=public_key_line(public_key) if public_key is not None else None,
                fingerprint=self.host_key_fingerprint,
                started=self._started,
                activate_on=waiting_for,
            )
        except (DiscoveryError, OSError) as error:
            log.warning("manhole-ssh writes no discovery record (manhole-ssh list): %s", error)

    def _arm_signal(self, signal_number: int) -> None:
        """Listen once ``signal_number`` arrives (see :class:`ActivationSignal`)."""
        name = signal.Signals(signal_number).name
        self._activation.arm(signal_number)
        log.info("manhole-ssh waits for %s (kill -%s %d) to listen", name, name[3:], os.getpid())
        self._started = time.time()
        self._publish(waiting_for=name)
        atexit.register(self._close_listeners)  # (which also removes the record)

    def revoke(self, fingerprint: str) -> None:
        """Refuse the key with this fingerprint (``SHA256:…``) from now on, and end the open
        sessions it logged in. Safe to call from any thread."""
        if not fingerprint.startswith("SHA256:"):
            raise ValueError(f"not a SHA256 key fingerprint: {fingerprint!r}")
        self._revoked.add(fingerprint)
        log.warning("key %s revoked", fingerprint)
        loop, settings = self._loop, self._settings
        if loop is not None and settings is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(settings.end_sessions_of, {fingerprint}, "key revoked")

    def announce(self, message: str) -> None:
        """Tell every open session ``message`` (a breakpoint waits). Safe from any thread."""
        loop, settings = self._loop, self._settings
        if loop is not None and settings is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(settings.announce, message)

    def set_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the top-level ``await`` of sessions started from now on on ``loop``: for a
        service that starts its loop after ``install()`` in a way sessions cannot find
        (uvloop, or loops in several threads). Safe to call from any thread."""
        asyncio_module = sys.modules.get("asyncio")
        if asyncio_module is None or not isinstance(loop, asyncio_module.AbstractEventLoop):
            raise ConfigError(f"loop must be an asyncio event loop, not {type(loop).__name__}")
        self.config = self.config._replace(loop=loop)
        if self._settings is not None:
            self._settings.host_loop = loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every session, and wait for the thread to end."""
        if self._stopped.is_set() and (self._thread is None or not self._thread.is_alive()):
            return
        self._stopped.set()
        self._stop_timeout = timeout
        self._activation.release()
        self._activation.disarm()
        self._wakeup.wake()  # the thread may wait in select()
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop_requested.set)
        if self._thread is not None and self._thread is not originals.current_thread():
            self._thread.join(timeout + 1.0)
        self._close_listeners()
        if self._audit_file is not None:
            self._audit_file.detach()
            self._audit_file = None

    def _thread_main(self) -> None:
        try:
            if not self._listeners and not self._activate():
                return
            if self._wait_for_first_connection():
                self._run_server()
        finally:
            self._stopped.set()
            self._close_listeners()
            self._wakeup.close()

    def forget_after_fork(self) -> None:
        """In a child made by ``os.fork()``: only the calling thread was copied, so this
        manhole's thread is gone. Close every descriptor it owned (listening sockets,
        client connections, its loop's selector, the wake-up pipe), so that the child holds
        no port and keeps no client's connection open, and leave the socket file, which is
        the parent's, as is the discovery record. Nothing is sent to any client: the parent
        still serves them."""
        self._stopped.set()
        self.record_path = None
        atexit.unregister(self._close_listeners)
        self._thread = None
        self._activation.disarm()
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        self._wakeup.forget_after_fork()
        if self._loop is not None:
            _close_loop_descriptors(self._loop)
        if self._audit_file is not None:
            self._audit_file.detach()
            self._audit_file = None

    def _close_listeners(self) -> None:
        """Close every listening socket (again is harmless) and remove the socket file."""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        if listeners and self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        atexit.unregister(self._close_listeners)
        record_path, self.record_path = self.record_path, None
        if record_path is not None:
            from .discovery import remove_record

            remove_record(record_path)

    def _activate(self) -> bool:
        """Wait for the activation signal, then listen; false if stopped or failed."""
        self._activation.wait()
        if self._stopped.is_set():
            return False
        try:
            self._listen()
        except ConfigError as error:
            self.error = error
            log.error("manhole-ssh could not start on %s: %s", self._signal_name(), error)
            return False
        return True

    def _signal_name(self) -> str:
        number = self.config.activate_on
        return signal.Signals(number).name if number is not None else "install()"

    def _wait_for_first_connection(self) -> bool:
        """Sleep, importing nothing, until a client connects (true) or stop() is called."""
        descriptors = [listener.fileno() for listener in self._listeners]
        while True:
            readable = self._wakeup.wait(descriptors)
            if readable is None or self._stopped.is_set():
                return False
            if readable:
                return True

    def _run_server(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from .green.real_loop import RealThreadPool, new_event_loop

        loop = new_event_loop()
        # prompt_toolkit completes and suggests in the loop's executor: name its threads
        # as the manhole's, so that threads() and the host's own tools can tell.
        green = originals.green_possible()
        executor = (RealThreadPool if green else ThreadPoolExecutor)(
            max_workers=4, thread_name_prefix=f"{MANHOLE_THREAD_PREFIX} executor"
        )
        loop.set_default_executor(executor)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:
            self.error = error
            log.error("manhole-ssh stopped: %s", error, exc_info=not isinstance(error, ConfigError))
        finally:
            if green:  # asyncio's shutdown_default_executor() waits in a green thread
                executor.shutdown(wait=True)
            else:
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        import asyncio

        from .server.serving import serve

        self._stop_requested = asyncio.Event()
        if self._stopped.is_set():
            return
        await serve(
            self._listeners,
            self.config,
            revoked=self._revoked,
            stop_requested=self._stop_requested,
            stop_timeout=lambda: self._stop_timeout,
            host_key_created=self._host_key_created,
            serving=self._serving,
        )

    def _host_key_created(self, host_key: asyncssh.SSHKey) -> None:
        self.host_key_fingerprint = host_key.get_fingerprint("sha256")
        self._host_public_key = host_key.public_data
        log.warning(
            "created host key %s (%s)", self.config.host_key_path, self.host_key_fingerprint
        )
        self._publish()

    def _serving(self, settings: ServerState) -> None:
        self._settings = settings


def _import_early_if_green() -> None:
    """Where a green library is loaded, import what serving needs (asyncssh, ptpython, the
    server's modules) now, in the caller's thread, instead of on the manhole's thread at
    the first connection. Two reasons:

    - importing asyncssh runs ``ldconfig`` (``ctypes.util.find_library``), and gevent's
      patched ``subprocess`` starts processes from the main thread only;
    - a gunicorn gevent worker patches right after the fork, while its manhole is already
      up: gevent then rewrites the import locks held at that moment, and an import under
      way on the manhole's thread fails ("cannot release un-acquired lock").

    The cost is what any host pays at its first connection (about half a second, and the
    memory of asyncssh, cryptography and ptpython), paid at ``install()`` or at the fork.
    """
    if originals.green_possible():
        from .server import ssh_server  # noqa: F401


# The installed manhole: one per process, as install() promises.
_installed: Manhole | None = None
_install_lock = threading.Lock()


def installed() -> Manhole | None:
    """The manhole :func:`manhole_ssh.install` started in this process and still running,
    or ``None``."""
    manhole = _installed
    return manhole if manhole is not None and manhole.running else None


def install_once(config: Config) -> Manhole:
    """Start the process's manhole with ``config`` (what :func:`manhole_ssh.install` does
    once it has checked the options). :raises ConfigError:"""
    global _installed
    with _install_lock:
        if _installed is not None and _installed.running:
            if _installed.config.given_through == COMMAND_LINE:
                raise ConfigError(
                    f"manhole-ssh run installed a manhole in this process already (it "
                    f"listens on {_installed.where()}), and the program calls install() "
                    "itself: run the program without manhole-ssh run, or remove its install()"
                )
            raise ConfigError(
                f"a manhole is already installed in this process (it listens on "
                f"{_installed.where()}): install() once per process, or call "
                "manhole_ssh.uninstall() first"
            )
        manhole = Manhole(config)
        reloader = reloader_parent()
        if reloader is not None:
            manhole.decline(f"process {os.getpid()} is {reloader}: no manhole here")
            log.info("manhole-ssh does not listen in process %d, %s", os.getpid(), reloader)
            return manhole
        try:
            manhole.start()
        except AddressInUse as error:
            _decline_if_one_of_several(manhole, error)
            return manhole
        _installed = manhole
    return manhole


def uninstall() -> None:
    """Stop the installed manhole, if any."""
    global _installed
    with _install_lock:
        manhole, _installed = _installed, None
    if manhole is not None:
        manhole.stop()


def _decline_if_one_of_several(manhole: Manhole, error: AddressInUse) -> None:
    """The address is taken. In a lone process, that is the caller's error: raise it,
    naming the holder if it is a manhole. In one of several processes of a service (a
    worker, a reloader's child), the service must not fail for it: log and go on without
    a manhole. :raises ConfigError:"""
    from .discovery import holder_of

    config = manhole.config
    holder = holder_of(config.port if config.listen_tcp else None, config.socket_path)
    reason = several_reason(holder.pid if holder is not None else None)
    if reason is None:
        if holder is None:
            raise error
        raise AddressInUse(f"{error} It is the manhole of process {holder.pid} ({holder.name}).")
    fix = (
        f"to have one in every process, give {spelled('port', '0')} or a socket path with "
        f"{{pid}} ({spelled('socket_path', '/run/app/manhole-{pid}.sock')}), then "
        "`manhole-ssh list`"
    )
    where = f"port {config.port}" if config.listen_tcp else f"socket {config.socket_path}"
    message = f"no manhole in process {os.getpid()}: {where} is taken, and this process is {reason}"
    manhole.decline(f"{message}; {fix}")
    log.warning("manhole-ssh: %s; %s", message, fix)


def _after_fork_in_child() -> None:
    """The manhole's thread does not survive a fork: free what the child inherited, and
    start the child's own manhole if on_fork="restart"."""
    global _installed, _install_lock
    _install_lock = threading.Lock()  # another thread may have held it at the fork
    manhole, _installed = _installed, None
    if manhole is None:
        return
    manhole.forget_after_fork()
    if manhole.config.on_fork == "restart":
        child = Manhole(manhole.config.for_this_process())
        try:
            child.start()
        except AddressInUse as error:  # the parent's fixed port: say so, and what to do
            try:
                _decline_if_one_of_several(child, error)
            except ConfigError as lone:
                log.error("manhole-ssh not restarted in child %d: %s", os.getpid(), lone)
            return
        except ConfigError as error:
            log.error("manhole-ssh not restarted in child %d: %s", os.getpid(), error)
            return
        _installed = child


os.register_at_fork(after_in_child=_after_fork_in_child)
