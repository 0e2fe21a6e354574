"""A real Celery worker over Redis for the tests about the queue, in a subprocess of its own."""

import os
import socket
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
def worker_running(
    *, queues: str, env: dict[str, str], log_path: Path, broker_url: str = BROKER_URL
) -> Iterator[subprocess.Popen]:
    """Start `celery worker -Q queues` on this test's database and Redis (or `broker_url`), wait until it is
    ready, and stop it afterwards; tasks sent meanwhile go over Redis instead of running in-process. The worker
    is named after its log file, so several can run side by side."""
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
            "-n",
            f"{log_path.stem}@%h",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--purge",
            "-l",
            "info",
        ],
        env={**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker_url, **env},
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


def port_free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own on a free port, which the test may stop and start again; the shared
    one everybody else uses is never touched."""

    def __init__(self, *, directory: Path) -> None:
        self.port = port_free()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@contextmanager
def broker_switched(url: str) -> Iterator[None]:
    """Point this process's Celery app at `url` (its cached connection pools too), and back afterwards.
    Celery reads CELERY_BROKER_URL from the environment before its configuration, so that is what changes."""

    def pools_forget() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    previous = os.environ.get("CELERY_BROKER_URL")
    pools_forget()
    os.environ["CELERY_BROKER_URL"] = url
    try:
        yield
    finally:
        pools_forget()
        if previous is None:
            del os.environ["CELERY_BROKER_URL"]
        else:
            os.environ["CELERY_BROKER_URL"] = previous
