"""A service run by systemd (manhole-app.service). It ends on SIGTERM the way a service
should, through sys.exit, so the manhole's exit handler removes its socket and record."""

import signal
import sys
import time


def stop(signal_number: int, frame: object) -> None:
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(1)
