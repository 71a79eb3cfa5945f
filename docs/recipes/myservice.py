"""The quickstart's service: a cache, a thread that serves, and one call to install()."""

import logging
import os
import threading
import time

import manhole_ssh

logging.basicConfig(level=logging.INFO)  # shows the manhole's line; without it, see §3

cache = {f"user:{number}": {"visits": number} for number in range(1532)}


def serve_forever() -> None:
    while True:
        cache["user:0"]["visits"] += 1
        time.sleep(0.1)


manhole = manhole_ssh.install(
    port=int(os.environ.get("MANHOLE_PORT", "2222")),  # the port from your settings
    locals={"cache": cache},
)
worker = threading.Thread(target=serve_forever, name="server", daemon=True)
worker.start()
worker.join()
