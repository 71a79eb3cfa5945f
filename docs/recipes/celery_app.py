"""Celery (`celery -A celery_app worker`): install() in worker_process_init only, which
fires in each prefork pool process and once in the solo pool's process. A socket per
process ({pid}); `manhole-ssh list` and `manhole-ssh connect PID` find them."""

import os

from celery import Celery
from celery.signals import worker_process_init

import manhole_ssh

app = Celery("celery_app", broker=os.environ.get("CELERY_BROKER", "memory://"))


@worker_process_init.connect
def install_manhole(**_: object) -> None:
    folder = os.environ.get("MANHOLE_SOCKETS", "/run/app")
    manhole_ssh.install(socket_path=f"{folder}/manhole-{{pid}}.sock")
