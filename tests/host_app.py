"""A host process for the tests: a small service with a manhole installed on a free port.

Usage: python host_app.py AUTHORIZED_KEYS HOST_KEY [--asyncio] [--chatty] [--chatty-task]
                          [--traced] [--breaker] [--set NAME=VALUE]…

It prints ``PORT <n>`` on stdout once the manhole is installed, then runs until killed.
``--asyncio`` runs the service on an asyncio loop (given to the manhole); ``--uses-prompt-toolkit``
makes the host use prompt_toolkit, ptpython and jedi itself first, and gives the manhole's
code ``library_state`` (tests/library_state.py) and ``before``, its snapshot; ``--chatty``
makes a host thread print ``host-line <n>`` on the host's stdout every 20 ms;
``--chatty-task`` (with ``--asyncio``) makes a task of the host's loop print
``host-task-line <n>`` the same way; ``--traced``
runs a host thread under a profile function (as a debugger, coverage or a profiler
would) that counts its loops in ``state["traced"]``; ``--set``
passes any other install() option (a number, or a string); ``--breaker`` runs a host thread
``host-breaker`` (and, with ``--asyncio``, a task) that calls ``manhole_ssh.set_trace()``
(``set_trace_async()``) in a loop once ``state["armed"]`` is true, counting the rounds
that went past it in ``state["passed"]`` (``state["passed_async"]``), sleeping
``state.get("nap", 0.01)`` seconds a round (counted in ``state["rounds"]``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

import manhole_ssh

state = {"counter": 0, "cache": {"a": 1}}


def count_traced() -> None:
    state["traced"] = state.get("traced", 0) + 1


def traced_worker() -> None:
    sys.setprofile(lambda frame, event, arg: None)
    while True:
        count_traced()  # a Python call: where the CPython 3.11 bug made traced threads spin
        time.sleep(0.001)


def chatter() -> None:
    line = 0
    while True:
        line += 1
        print(f"host-line {line}", flush=True)
        time.sleep(0.02)


def breaker() -> None:
    rounds = 0
    while True:
        rounds += 1
        if state.get("armed"):
            manhole_ssh.set_trace()
            state["passed"] = rounds
        state["rounds"] = rounds
        time.sleep(state.get("nap", 0.01))


async def async_breaker() -> None:
    rounds = 0
    while True:
        rounds += 1
        await asyncio.sleep(0.01)
        if state.get("armed"):
            await manhole_ssh.set_trace_async()
            state["passed_async"] = rounds


async def chatter_task() -> None:
    line = 0
    while True:
        line += 1
        print(f"host-task-line {line}", flush=True)
        await asyncio.sleep(0.02)


async def serve_forever(options: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    if options.breaker:
        state["breaker_task"] = loop.create_task(async_breaker())
    if options.chatty_task:
        state["chatter"] = loop.create_task(chatter_task())
    install(options, {"host_loop": loop, "host_thread": threading.current_thread()})
    while True:
        await asyncio.sleep(0.05)
        state["counter"] += 1


def install(options: argparse.Namespace, extra: dict[str, object]) -> None:
    manhole = manhole_ssh.install(
        port=0,
        authorized_keys=options.authorized_keys,
        host_key=options.host_key,
        locals={"state": state, **extra, **_library_state()},
        **dict(_option(setting) for setting in options.set),
    )
    print(f"PORT {manhole.port}", flush=True)


def _library_state() -> dict[str, object]:
    return {name: state[name] for name in ("library_state", "before") if name in state}


def _option(setting: str) -> tuple[str, object]:
    name, _, text = setting.partition("=")
    for kind in (int, float):
        try:
            return name, kind(text)
        except ValueError:
            pass
    return name, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("authorized_keys")
    parser.add_argument("host_key")
    parser.add_argument("--asyncio", action="store_true")
    parser.add_argument("--chatty", action="store_true")
    parser.add_argument("--chatty-task", action="store_true")
    parser.add_argument("--traced", action="store_true")
    parser.add_argument("--breaker", action="store_true")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--uses-prompt-toolkit", action="store_true")
    options = parser.parse_args()
    if options.uses_prompt_toolkit:
        import library_state

        state.update(library_state=library_state, before=library_state.snapshot())
    if options.traced:
        threading.Thread(target=traced_worker, name="host-traced", daemon=True).start()
    if options.chatty:
        threading.Thread(target=chatter, name="host-chatter", daemon=True).start()
    if options.breaker and not options.asyncio:
        threading.Thread(target=breaker, name="host-breaker", daemon=True).start()
    if options.asyncio:
        asyncio.run(serve_forever(options))
        return
    install(options, {"host_thread": threading.current_thread()})
    while True:
        time.sleep(0.05)
        state["counter"] += 1


if __name__ == "__main__":
    sys.exit(main())
