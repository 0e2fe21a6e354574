"""End to end over the real queue: the web client uploads, a Celery worker on Redis analyses."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from moderation.models import State, Submission
from portal.celery import app as celery_app
from tests.conftest import TINY_MODEL, login, upload_file

# serialized_rollback: the roles created by migrations survive the other transactional tests' flushes.
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker(settings, tiny_weights_dir: Path, media_in_tmp: Path, tmp_path: Path):
    if not BROKER_URL or connection.vendor != "postgresql":
        pytest.skip("needs CELERY_BROKER_URL and DATABASE_URL (PostgreSQL): run the README's test command")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "DETECTOR_WEIGHTS_DIR": str(tiny_weights_dir),
        "DETECTOR_DEFAULT_MODEL": TINY_MODEL,
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
    }
    celery_app.control.purge()  # messages left by an earlier, interrupted run
    log_path = tmp_path / "worker.log"
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
            "gpu,default",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--purge",
            "-l",
            "info",
        ],
        env=env,
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


def test_an_upload_through_the_web_is_analysed_by_a_real_worker_over_redis(client, contributor, force_verdict, worker):
    force_verdict("ai")
    response = login(client, contributor).post(
        reverse("upload"), {"files": [upload_file("field.jpg")], "scenery": "forest"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200, response.content
    submission = Submission.objects.get()

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and submission.state in {State.QUEUED, State.ANALYSING}:
        assert worker.poll() is None, "the worker died"
        time.sleep(0.5)
        submission.refresh_from_db()

    assert submission.state == State.FLAGGED
    detection = submission.detections.get()
    assert detection.model_name == TINY_MODEL
    assert detection.heatmaps.exists()
    assert list(submission.audit_events.order_by("created_at", "id").values_list("to_state", flat=True)) == [
        "received",
        "queued",
        "analysing",
        "flagged",
    ]
