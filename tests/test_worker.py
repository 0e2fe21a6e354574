"""End to end over the real queue: the web client uploads, a Celery worker on Redis analyses."""

import re
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from detection.models import Detection, SelfTestResult
from moderation.lifecycle import Action
from moderation.models import State, Submission
from tests.conftest import TINY_MODEL, login, upload_file
from tests.factories import image_bytes
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
    with worker_running(queues="gpu,heatmaps,default", env=env, log_path=tmp_path / "worker.log") as process:
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
    while not detection.heatmaps.exists():  # rendered after the verdict, by the next task
        assert worker.poll() is None and time.monotonic() < deadline, "the heatmap never rendered"
        time.sleep(0.2)
    assert list(submission.audit_events.order_by("created_at", "id").values_list("to_state", flat=True)) == [
        "received",
        "queued",
        "analysing",
        "flagged",
    ]


def test_a_heatmap_worker_of_its_own_renders_flagged_items_heatmaps_and_the_analysis_worker_renders_none(
    client, contributor, force_verdict, tiny_weights_dir, media_in_tmp, tmp_path
):
    force_verdict("ai")
    env = {
        "DETECTOR_WEIGHTS_DIR": str(tiny_weights_dir),
        "DETECTOR_DEFAULT_MODEL": TINY_MODEL,
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
    }
    logs = {queues: tmp_path / f"worker-{queues}.log" for queues in ("gpu,default", "heatmaps")}
    with ExitStack() as stack:
        workers = [stack.enter_context(worker_running(queues=q, env=env, log_path=log)) for q, log in logs.items()]
        login(client, contributor).post(reverse("upload"), {"files": [upload_file("field.jpg")], "scenery": "sea"})
        submission = Submission.objects.get()
        wait_for_state(submission, workers[0])
        assert submission.state == State.FLAGGED
        deadline = time.monotonic() + 60
        while not submission.detections.get().heatmaps.exists():
            assert all(w.poll() is None for w in workers) and time.monotonic() < deadline, "no heatmap rendered"
            time.sleep(0.2)
    analysis_log, heatmap_log = (log.read_text() for log in logs.values())
    rendered = re.compile(r"detection\.tasks\.heatmap_make\[[^]]+\] succeeded")
    assert "moderation.tasks.submission_analyse[" in analysis_log and not rendered.search(analysis_log)
    assert rendered.search(heatmap_log)


def test_two_workers_sharing_the_gpu_queue_analyse_every_upload_exactly_once_between_them(
    client, contributor, force_verdict, settings, tiny_weights_dir, media_in_tmp, tmp_path
):
    force_verdict("real")
    env = {
        "DETECTOR_WEIGHTS_DIR": str(tiny_weights_dir),
        "DETECTOR_DEFAULT_MODEL": TINY_MODEL,
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
    }
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    files = [upload_file(f"photo{seed}.jpg", image_bytes(seed=seed)) for seed in range(8)]
    with ExitStack() as stack:
        workers = [stack.enter_context(worker_running(queues="gpu", env=env, log_path=log)) for log in logs]
        response = login(client, contributor).post(
            reverse("upload"), {"files": files, "scenery": "forest"}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 200, response.content
        assert Submission.objects.count() == len(files)
        deadline = time.monotonic() + 180
        while Submission.objects.exclude(state=State.CLEARED).exists():
            assert all(worker.poll() is None for worker in workers), "a worker died"
            assert time.monotonic() < deadline, list(Submission.objects.values_list("state", flat=True))
            time.sleep(0.5)
        time.sleep(2)  # a second copy of a message, were one handed out, would be taken by now

    for submission in Submission.objects.all():
        assert Detection.objects.filter(submission=submission).count() == 1
        assert AuditEvent.objects.filter(submission=submission, action=Action.ANALYSE).count() == 1
    # Each message went to one worker only, and both took their share.
    received = re.compile(r"Task moderation\.tasks\.submission_analyse\[[^]]+\] received")
    taken = [len(received.findall(log.read_text())) for log in logs]
    assert sum(taken) == len(files) and min(taken) >= 1, taken


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


def test_a_background_heatmap_waits_behind_an_analysis_queued_after_it(
    client, contributor, force_verdict, worker, media_in_tmp
):
    import psycopg

    from detection.models import Heatmap
    from detection.services import heatmap_request
    from tests.workers import database_url

    force_verdict("ai")
    login(client, contributor)
    client.post(reverse("upload"), {"files": [upload_file("first.jpg")], "scenery": "sea"})
    first = Submission.objects.get()
    wait_for_state(first, worker)
    detection = first.detections.get()
    deadline = time.monotonic() + 60
    while not detection.heatmaps.exists():  # its own default heatmap first, so the worker is idle
        assert worker.poll() is None and time.monotonic() < deadline, "the default heatmap never rendered"
        time.sleep(0.2)
    # Hold the worker inside a render (its row insert waits on this lock) while two more jobs queue behind it.
    blocker = psycopg.connect(database_url(), autocommit=False)
    try:
        blocker.execute(f"LOCK TABLE {Heatmap._meta.db_table} IN EXCLUSIVE MODE")
        heatmap_request(detection_id=detection.pk, layer="features.6")
        deadline = time.monotonic() + 60
        while not any((media_in_tmp / "heatmaps").rglob("*features.6.png")):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never started the render"
            time.sleep(0.2)
        heatmap_request(detection_id=detection.pk, layer="features.18", background=True)  # queued first...
        client.post(reverse("upload"), {"files": [upload_file("second.jpg", image_bytes(seed=5))], "scenery": "sea"})
    finally:
        blocker.rollback()
        blocker.close()
    second = Submission.objects.exclude(pk=first.pk).get()
    wait_for_state(second, worker)
    deadline = time.monotonic() + 60
    while not Heatmap.objects.filter(layer="features.18").exists():
        assert worker.poll() is None and time.monotonic() < deadline, "the background heatmap never rendered"
        time.sleep(0.2)
    # ...yet analysed after the upload that came later: verdicts never wait for heatmaps.
    verdict_at = second.audit_events.get(to_state=State.FLAGGED).created_at
    assert verdict_at < Heatmap.objects.get(detection=detection, layer="features.18").created_at


def wait_for_state(submission, worker) -> None:
    deadline = time.monotonic() + 120
    submission.refresh_from_db()
    while submission.state in {State.RECEIVED, State.QUEUED, State.ANALYSING}:
        assert worker.poll() is None and time.monotonic() < deadline, "the analysis never finished"
        time.sleep(0.2)
        submission.refresh_from_db()


def test_the_upload_page_gets_its_scenery_suggestion_from_a_real_worker_and_none_when_no_worker_answers(
    client, contributor, settings, scenery_head, media_in_tmp, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.celery import app as celery_app
    from tests.scenery_heads import SUGGESTED

    def ask() -> dict:
        photo = SimpleUploadedFile("a.jpg", scenery_head, content_type="image/jpeg")
        return client.post(reverse("scenery_suggestion"), {"image": photo}).json()

    login(client, contributor)
    env = {
        "DETECTOR_WEIGHTS_DIR": str(settings.DETECTOR_WEIGHTS_DIR),
        "DETECTOR_DEFAULT_MODEL": TINY_MODEL,
        "SCENERY_HEAD_DIR": str(settings.SCENERY_HEAD_DIR),
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
    }
    settings.SCENERY_SUGGEST_WAIT_SECONDS = 90  # the worker loads the encoder on its first question
    with worker_running(queues="gpu", env=env, log_path=tmp_path / "worker.log"):
        assert ask()["scenery"] == SUGGESTED
    # The worker is gone: the page is told "no suggestion" once the wait is over, and nothing waits for it.
    celery_app.conf.task_always_eager = False
    settings.SCENERY_SUGGEST_WAIT_SECONDS = 1
    started = time.monotonic()
    assert ask() == {"scenery": None, "label": None}
    assert time.monotonic() - started < 5
    assert not contributor.submissions.exists()
