"""A real Celery worker over Redis for the tests about the queue, in a subprocess of its own."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from portal.celery import app as celery_app

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextmanager
def worker_running(*, queues: str, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """Start `celery worker -Q queues` on this test's database and Redis, wait until it is ready, and stop it
    afterwards; tasks sent meanwhile go over Redis instead of running in-process."""
    if not BROKER_URL or connection.vendor != "postgresql":
        pytest.skip("needs CELERY_BROKER_URL and DATABASE_URL (PostgreSQL): run the README's test command")
    celery_app.control.purge()  # messages left by an earlier, interrupted run
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            queues,
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--purge",
            "-l",
            "info",
        ],
        env={**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": BROKER_URL, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while "ready." not in log_path.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)
    celery_app.conf.task_always_eager = False
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        print(log_path.read_text()[-3000:])
