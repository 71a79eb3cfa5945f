"""Flask, with or without the reloader (`flask --app flask_app run [--debug]`): install()
where the app is made. Under the reloader, its parent (which serves nothing) does not
listen; the child that serves does."""

import os

from flask import Flask

import manhole_ssh

manhole_ssh.install(port=int(os.environ.get("MANHOLE_PORT", "2222")))
app = Flask(__name__)


@app.route("/")
def pid() -> str:
    return str(os.getpid())
