"""Batched analysis: one task takes the submissions waiting in the queue and scores them in one network call,
yet each gets its own transition, audit entry and webhook, exactly once, and a bad file fails alone."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from audit.models import AuditEvent
from detection.core.inference import Detector
from moderation import analysis, roles, services
from moderation.lifecycle import Action
from moderation.models import State, Submission
from moderation.tasks import submission_analyse
from tests.factories import UserFactory, image_bytes
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_create


@pytest.fixture
def queued(contributor, force_verdict):
    """Uploads moved to queued whose analysis messages have not run yet (as when they wait behind a busy worker)."""
    force_verdict("ai")

    def make(count: int) -> list[Submission]:
        return [
            services.submission_transition(
                submission_id=services.submission_create(
                    contributor=contributor,
                    stream=io.BytesIO(image_bytes(seed=i)),
                    original_name=f"p{i}.jpg",
                    scenery="sea",
                ).pk,
                action=Action.QUEUE,
            )
            for i in range(count)
        ]

    return make


@pytest.fixture
def network_calls(monkeypatch) -> list[int]:
    """How many images each call into the test model's network carried."""
    calls: list[int] = []
    predict_arrays = Detector.predict_arrays
    monkeypatch.setattr(
        Detector, "predict_arrays", lambda self, arrays: calls.append(len(arrays)) or predict_arrays(self, arrays)
    )
    return calls


def actions(submission: Submission) -> list[str]:
    return list(AuditEvent.objects.filter(submission=submission).order_by("id").values_list("action", flat=True))


def test_one_task_scores_the_waiting_submissions_in_one_network_call_each_with_its_own_transition_and_webhook(
    queued, network_calls, django_capture_on_commit_callbacks
):
    webhook_create(owner=UserFactory(role=roles.ADMIN), url="https://example.com/hook", events=["submission.analysed"])
    waiting = queued(5)
    with django_capture_on_commit_callbacks(execute=True):
        submission_analyse.apply(args=[waiting[0].pk])
    assert network_calls == [5]
    for submission in waiting:
        submission.refresh_from_db()
        assert submission.state == State.FLAGGED
        assert actions(submission) == [Action.UPLOAD, Action.QUEUE, Action.ANALYSIS_START, Action.ANALYSE]
        assert submission.detections.count() == 1
    assert WebhookDelivery.objects.count() == 5

    # Their own messages arrive afterwards and change nothing.
    with django_capture_on_commit_callbacks(execute=True):
        for submission in waiting[1:]:
            submission_analyse.apply(args=[submission.pk])
    assert network_calls == [5]
    assert all(len(actions(submission)) == 4 for submission in waiting)
    assert WebhookDelivery.objects.count() == 5


def test_a_batch_takes_at_most_the_batch_size_oldest_first(settings, queued, network_calls):
    settings.ANALYSIS_BATCH_SIZE = 2
    waiting = queued(4)
    submission_analyse.apply(args=[waiting[3].pk])
    states = dict(Submission.objects.values_list("pk", "state"))
    assert [states[s.pk] for s in waiting] == [State.FLAGGED, State.QUEUED, State.QUEUED, State.FLAGGED]
    assert network_calls == [2]


def test_an_unreadable_file_in_a_batch_fails_alone(queued, network_calls):
    waiting = queued(3)
    broken = waiting[1]
    default_storage.delete(broken.original.name)
    default_storage.save(broken.original.name, ContentFile(b"\xff\xd8\xff\xe0 truncated"))
    submission_analyse.apply(args=[waiting[0].pk])
    states = dict(Submission.objects.values_list("pk", "state"))
    assert [states[s.pk] for s in waiting] == [State.FLAGGED, State.FAILED, State.FLAGGED]
    assert Submission.objects.get(pk=broken.pk).failure_reason.startswith("Analysis error")
    assert network_calls == [2]


def test_an_image_the_network_fails_on_fails_alone_and_the_rest_of_its_batch_is_scored(queued, monkeypatch):
    waiting = queued(3)
    poisoned = waiting[2].sha256
    predict_arrays = Detector.predict_arrays
    # The batch call fails because of one image; scored one by one, only that image fails.
    calls: list[int] = []

    def fragile(self, arrays):
        calls.append(len(arrays))
        if len(arrays) > 1 or calls.count(1) == 3:
            raise RuntimeError("kernel failed on this input")
        return predict_arrays(self, arrays)

    monkeypatch.setattr(Detector, "predict_arrays", fragile)
    submission_analyse.apply(args=[waiting[0].pk])
    states = {s.sha256: s.state for s in Submission.objects.all()}
    assert states.pop(poisoned) == State.FAILED
    assert set(states.values()) == {State.FLAGGED}
    assert calls == [3, 1, 1, 1]


def test_a_message_for_a_submission_another_task_took_leaves_it_to_that_task(queued, network_calls):
    [submission] = queued(1)
    assert analysis.analyses_take(task_id="batch-a", submission_id=submission.pk) == [submission.pk]
    submission_analyse.apply(args=[submission.pk], task_id="someone-else")
    submission.refresh_from_db()
    assert (submission.state, submission.analysis_task_id) == (State.ANALYSING, "batch-a")
    assert network_calls == []
    # The task that took it, delivered again (a worker died), resumes it.
    submission_analyse.apply(args=[submission.pk], task_id="batch-a")
    submission.refresh_from_db()
    assert submission.state == State.FLAGGED


def test_a_redelivered_batch_resumes_every_submission_it_took(queued, network_calls):
    waiting = queued(3)
    assert analysis.analyses_take(task_id="batch-a", submission_id=waiting[0].pk) == [s.pk for s in waiting]
    # The worker died before scoring; the others' own messages found them taken and did nothing.
    for submission in waiting[1:]:
        submission_analyse.apply(args=[submission.pk])
    assert network_calls == []
    submission_analyse.apply(args=[waiting[0].pk], task_id="batch-a")
    assert set(Submission.objects.values_list("state", flat=True)) == {State.FLAGGED}
    assert network_calls == [3]
