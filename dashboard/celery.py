"""The Celery app. Start a worker with ``celery -A dashboard worker``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # No result backend: tasks report through their Operation row.
    result_backend=None,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    worker_hijack_root_logger=False,
)
# Task modules: each claims its Operation row before doing anything.
app.conf.imports = ("operations.tasks", "operations.replay_tasks", "operations.notifications")


@app.task(name="dashboard.ping", ignore_result=True)
def ping(path: str, token: str) -> None:
    """Write ``token`` to ``path``: the smallest proof that a worker runs our tasks."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(token)


@worker_process_init.connect
def _reset_aws_clients(**_: object) -> None:
    # boto3 clients are not fork-safe: each worker process builds its own.
    from operations.aws import client

    client.reset()
