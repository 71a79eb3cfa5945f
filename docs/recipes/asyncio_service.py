"""An asyncio service: install() from inside the running loop, so that top-level `await`
in a session runs on this loop, beside the service's own tasks."""

import asyncio

import manhole_ssh

state = {"ticks": 0}


async def tick() -> None:
    while True:
        state["ticks"] += 1
        await asyncio.sleep(0.1)


async def main() -> None:
    manhole_ssh.install(port=0, locals={"state": state})  # 0: any free port; see list
    await tick()


asyncio.run(main())
