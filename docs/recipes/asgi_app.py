"""An ASGI app on uvicorn (`uvicorn --workers 2 asgi_app:app`): install() in the lifespan
start-up, which runs in each worker on its own loop, so `await` in a session runs there.
With FastAPI, the same call goes in the `lifespan` context manager."""

import os

import manhole_ssh


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # 0: a free port per worker (manhole-ssh list); a fixed one: one worker gets it.
                manhole_ssh.install(port=int(os.environ.get("MANHOLE_PORT", "0")))
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
