"""Faults with the real parts: a worker killed with -9 mid-analysis is redelivered and analysed once; uploads
while the broker is down are kept and analysed once it is back.

Slow (it waits for the broker's visibility timeout): `./dev test -m faults` runs it alone.
"""

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from detection.models import Detection, Heatmap
from moderation.lifecycle import Action
from moderation.models import State, Submission
from portal.celery import app as celery_app
from tests.conftest import TINY_MODEL, login, upload_file
from tests.factories import image_bytes
from tests.hostile.test_hostile_uploads import assert_storage_matches_rows
from tests.workers import PrivateRedis, broker_switched, database_url, worker_running

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Short limits so a redelivery comes within the test's patience; the visibility timeout stays above the limit.
FAST_REDELIVERY = {"ANALYSIS_TIME_LIMIT_SECONDS": "40", "CELERY_VISIBILITY_TIMEOUT": "45"}
FINISHED = {State.FLAGGED, State.CLEARED, State.FAILED}


@pytest.fixture
def worker_env(tiny_weights_dir: Path, media_in_tmp: Path) -> dict[str, str]:
    return {
        "DETECTOR_WEIGHTS_DIR": str(tiny_weights_dir),
        "DETECTOR_DEFAULT_MODEL": TINY_MODEL,
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
        **FAST_REDELIVERY,
    }


def wait_for(predicate, *, seconds: float, what: str, processes=()) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        for process in processes:
            assert process.poll() is None, f"a process died while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_worker_killed_while_rendering_a_heatmap_has_recorded_the_verdict_and_the_heatmap_is_redelivered(
    client, contributor, force_verdict, worker_env, media_in_tmp, tmp_path
):
    force_verdict("ai")
    # Another connection holds the heatmap table, so the worker stops between saving the overlay file and
    # recording its row: the moment a killed worker leaves the most behind.
    blocker = psycopg.connect(database_url(), autocommit=False)
    try:
        with worker_running(queues="gpu,heatmaps,default", env=worker_env, log_path=tmp_path / "worker-1.log") as first:
            blocker.execute(f"LOCK TABLE {Heatmap._meta.db_table} IN EXCLUSIVE MODE")
            login(client, contributor).post(reverse("upload"), {"files": [upload_file()], "scenery": "sea"})
            submission = Submission.objects.get()
            wait_for(
                lambda: any((media_in_tmp / "heatmaps").rglob("*.png")),
                seconds=90,
                what="the overlay file",
                processes=[first],
            )
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    # The verdict never waited for the heatmap: it was recorded before the render began.
    assert Submission.objects.get().state == State.FLAGGED
    assert Detection.objects.filter(submission=submission).exists() and not Heatmap.objects.exists()

    # The new worker finds the dead one's message only after the visibility timeout: nothing was acknowledged.
    with worker_running(queues="gpu,heatmaps,default", env=worker_env, log_path=tmp_path / "worker-2.log") as second:
        wait_for(lambda: Heatmap.objects.exists(), seconds=180, what="the redelivered heatmap", processes=[second])
    assert Detection.objects.filter(submission=submission).count() == 1
    assert Detection.objects.get(submission=submission).heatmaps.count() == 1
    assert AuditEvent.objects.filter(submission_id=submission.pk, to_state=State.FLAGGED).count() == 1
    assert_storage_matches_rows()  # the killed worker's overlay file was replaced, not left beside the new one


def test_uploads_while_the_broker_is_down_are_kept_received_and_analysed_once_it_is_back(
    client, contributor, force_verdict, worker_env, media_in_tmp, tmp_path
):
    force_verdict("real")
    broker = PrivateRedis(directory=tmp_path)
    broker.start()
    # The sweep sends whatever is still received, however young: the beat's minute is not worth waiting for here.
    env = {**worker_env, "ANALYSIS_RESEND_AFTER_SECONDS": "0"}
    try:
        with (
            broker_switched(broker.url),
            worker_running(queues="gpu,default", env=env, log_path=tmp_path / "worker.log", broker_url=broker.url) as w,
        ):
            broker.stop()
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=contributor).key}")
            by_api = api.post(
                "/api/submissions/",
                {"files": [upload_file(f"api{i}.jpg", image_bytes(seed=i)) for i in range(3)], "scenery": "sea"},
            )
            by_form = login(client, contributor).post(
                reverse("upload"),
                {"files": [upload_file(f"form{i}.jpg", image_bytes(seed=10 + i)) for i in range(3)], "scenery": "sea"},
                HTTP_ACCEPT="application/json",
            )
            assert (by_api.status_code, by_form.status_code) == (201, 200), (by_api.content, by_form.content)
            submissions = Submission.objects.all()
            assert len(submissions) == 6
            assert {s.state for s in submissions} == {State.RECEIVED}
            assert all(default_storage.exists(s.original.name) for s in submissions)

            broker.start()
            celery_app.send_task("moderation.tasks.submissions_sweep")  # what the beat sends every minute
            wait_for(
                lambda: set(Submission.objects.values_list("state", flat=True)) <= FINISHED,
                seconds=180,
                what="analysis after the broker returned",
                processes=[w],
            )
    finally:
        broker.stop()
    for submission in Submission.objects.all():
        assert submission.state == State.CLEARED, submission.failure_reason
        assert Detection.objects.filter(submission=submission).count() == 1
        assert AuditEvent.objects.filter(submission_id=submission.pk, action=Action.ANALYSE).count() == 1
    assert_storage_matches_rows()
