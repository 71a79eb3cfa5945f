"""A WSGI app on gunicorn (`gunicorn --workers 2 wsgi_app:app`): install() in the module
each worker imports (with --preload, add on_fork="restart")."""

import os

import manhole_ssh

# 0: a free port per worker (manhole-ssh list); a fixed one: one worker gets it.
manhole_ssh.install(port=int(os.environ.get("MANHOLE_PORT", "0")))


def app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
