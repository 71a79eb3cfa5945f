import os

from django.apps import AppConfig

import manhole_ssh


class ManholeApp(AppConfig):
    name = "djapp"

    def ready(self) -> None:
        # runserver's autoreloader parent does not listen; the child that serves does.
        manhole_ssh.install(port=int(os.environ.get("MANHOLE_PORT", "2222")))
