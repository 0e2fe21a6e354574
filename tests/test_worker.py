"""End to end over the real queue: the web client uploads, a Celery worker on Redis analyses."""

import time
from pathlib import Path

import pytest
from django.urls import reverse

from detection.models import SelfTestResult
from moderation.models import State, Submission
from tests.conftest import TINY_MODEL, login, upload_file
from tests.selftests import bundle_with_drifted_golden
from tests.workers import worker_running

# serialized_rollback: the roles created by migrations survive the other transactional tests' flushes.
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def worker(settings, tiny_weights_dir: Path, media_in_tmp: Path, tmp_path: Path):
    env = {
        "DETECTOR_WEIGHTS_DIR": str(tiny_weights_dir),
        "DETECTOR_DEFAULT_MODEL": TINY_MODEL,
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
    }
    with worker_running(queues="gpu,default", env=env, log_path=tmp_path / "worker.log") as process:
        yield process


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


def test_a_worker_checks_the_active_model_at_start_and_records_a_refusal_that_fails_health(
    client, settings, tiny_weights_dir, media_in_tmp, tmp_path
):
    weights = bundle_with_drifted_golden(weights_dir=tiny_weights_dir, name=TINY_MODEL, target=tmp_path / "weights")
    settings.DETECTOR_WEIGHTS_DIR, settings.DETECTOR_DEFAULT_MODEL = weights, TINY_MODEL
    env = {
        "DETECTOR_WEIGHTS_DIR": str(weights),
        "DETECTOR_DEFAULT_MODEL": TINY_MODEL,
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
    }
    with worker_running(queues="gpu,default", env=env, log_path=tmp_path / "worker.log"):
        # The check runs before the worker reports ready: nothing has been uploaded yet.
        result = SelfTestResult.objects.get(model_name=TINY_MODEL)
    assert not result.passed and "refused on this machine" in result.detail
    assert client.get(reverse("health")).status_code == 503
