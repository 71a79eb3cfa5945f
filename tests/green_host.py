"""A host process on green threads for the tests: gevent's or eventlet's monkey-patching,
a manhole, 200 idle greenlets, and a main greenlet that stalls the hub with CPU work on
request.

Usage: python green_host.py AUTHORIZED_KEYS HOST_KEY gevent|eventlet patch-first|import-first

``patch-first`` patches before ``import manhole_ssh``, ``import-first`` after (both before
``install()``). It prints ``PORT <n>``; then, once a session sets ``state["stall"] = N``, the
main greenlet computes without yielding for N seconds (or until ``state["stop"]`` is set),
printing ``stalling`` and ``stall over`` around it.
"""

from __future__ import annotations

import sys
import time

AUTHORIZED_KEYS, HOST_KEY, LIBRARY, ORDER = sys.argv[1:5]


def patch() -> None:
    if LIBRARY == "gevent":
        from gevent import monkey

        monkey.patch_all()
    else:
        import eventlet

        eventlet.monkey_patch()


if ORDER == "patch-first":
    patch()
import manhole_ssh  # noqa: E402

if ORDER == "import-first":
    patch()

if LIBRARY == "gevent":
    import gevent

    green_sleep, spawn = gevent.sleep, gevent.spawn
    from gevent.monkey import get_original
else:
    import eventlet
    from eventlet.patcher import original

    green_sleep, spawn = eventlet.sleep, eventlet.spawn

    def get_original(module: str, name: str) -> object:
        return getattr(original(module), name)


real_thread_ident = get_original("_thread", "get_ident")
state: dict[str, object] = {"stalling": False}


def where() -> int:
    """The OS thread this runs in."""
    return int(real_thread_ident())  # type: ignore[operator]


def idle_greenlet() -> None:
    while True:
        green_sleep(3600)


def spin_in_the_hub(seconds: float) -> None:
    """CPU work that never yields: the hub and every other greenlet wait for it."""
    state["stalling"] = True
    print("stalling", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not state.get("stop"):
        state["spins"] = int(state.get("spins", 0)) + 1  # type: ignore[call-overload]
    state["stalling"] = False
    print("stall over", flush=True)


def main() -> None:
    manhole = manhole_ssh.install(
        port=0,
        authorized_keys=AUTHORIZED_KEYS,
        host_key=HOST_KEY,
        locals={"state": state, "where": where, "hub_thread": where(), "sleep": green_sleep},
    )
    for _ in range(200):
        spawn(idle_greenlet)
    print(f"PORT {manhole.port}", flush=True)
    while True:
        green_sleep(0.02)
        seconds = state.pop("stall", None)
        if seconds is not None:
            spin_in_the_hub(float(seconds))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
