import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from audit.models import AuditEvent
from common.errors import Invalid
from detection import services as detection_services
from detection.models import Detection
from moderation import analysis, services
from moderation.models import Decision, State, Submission
from moderation.tasks import submission_analyse, submissions_sweep
from tests.factories import image_bytes


def states_in_audit(submission: Submission) -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(submission=submission)
        .order_by("created_at", "id")
        .values_list("action", "from_state", "to_state")
    )


def test_a_likely_ai_upload_is_flagged_with_a_heatmap_and_every_step_audited(
    contributor, submission_make, force_verdict
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    assert submission.state == State.FLAGGED
    assert submission.verdict == "ai"
    detection = submission.detections.get()
    assert detection.model_name == "tiny_mobilenet"
    assert 0.0 <= detection.ai_probability <= 1.0
    assert submission.ai_probability == detection.ai_probability
    assert detection.latency_ms > 0
    [heatmap_row] = detection.heatmaps.all()
    assert heatmap_row.layer == "features.13"  # MobileNetV2's default Grad-CAM layer
    with default_storage.open(heatmap_row.image.name) as fh:
        heatmap = Image.open(fh)
        assert heatmap.format == "PNG"
    assert states_in_audit(submission) == [
        ("uploaded", "", "received"),
        ("queued", "received", "queued"),
        ("analysis started", "queued", "analysing"),
        ("analysed", "analysing", "flagged"),
    ]


def test_an_uncertain_verdict_also_sends_the_submission_to_a_human(contributor, submission_make, force_verdict):
    force_verdict("uncertain")
    submission = submission_make(contributor=contributor)
    assert (submission.state, submission.verdict) == (State.FLAGGED, "uncertain")


def test_a_likely_real_upload_is_cleared_without_a_heatmap(contributor, submission_make, force_verdict):
    force_verdict("real")
    submission = submission_make(contributor=contributor)
    assert submission.state == State.CLEARED
    assert not submission.detections.get().heatmaps.exists()


def test_without_trained_weights_analysis_fails_loudly_and_never_invents_a_score(
    contributor, submission_make, settings, tmp_path
):
    settings.DETECTOR_WEIGHTS_DIR = tmp_path / "empty"
    settings.DETECTOR_DEFAULT_MODEL = "resnet50"
    submission = submission_make(contributor=contributor)
    assert submission.state == State.FAILED
    assert submission.failure_reason == "no trained weights for resnet50"
    assert submission.ai_probability is None
    assert not Detection.objects.exists()


def test_a_moderator_can_requeue_a_failed_submission(
    contributor,
    moderator,
    submission_make,
    settings,
    tmp_path,
    tiny_weights_dir,
    force_verdict,
    django_capture_on_commit_callbacks,
):
    settings.DETECTOR_WEIGHTS_DIR = tmp_path / "empty"
    submission = submission_make(contributor=contributor)
    assert submission.state == State.FAILED
    settings.DETECTOR_WEIGHTS_DIR = tiny_weights_dir
    force_verdict("ai")
    with django_capture_on_commit_callbacks(execute=True):
        services.submission_requeue(submission_id=submission.pk, actor=moderator, reason="weights shipped")
    submission.refresh_from_db()
    assert submission.state == State.FLAGGED
    assert submission.failure_reason == ""
    assert AuditEvent.objects.filter(submission=submission, action="requeued", actor=moderator).exists()


def test_running_the_analysis_task_twice_leaves_one_detection(contributor, submission_make, force_verdict):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    submission.refresh_from_db()
    task_id = submission.analysis_task_id
    Submission.objects.filter(pk=submission.pk).update(state=State.ANALYSING)  # as if the message came back
    submission_analyse.apply(args=[submission.pk], task_id=task_id)
    assert submission.detections.count() == 1
    submission.refresh_from_db()
    assert submission.state == State.FLAGGED


def test_the_task_ignores_a_submission_that_no_longer_exists(db, force_verdict):
    submission_analyse.apply(args=[987654])
    assert not Detection.objects.exists()


def test_a_transient_database_error_is_retried_then_succeeds(contributor, submission_make, force_verdict, monkeypatch):
    from django.db import OperationalError

    force_verdict("real")
    real_score = detection_services._images_score
    calls = []

    def flaky(*, detector, images):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("connection reset")
        return real_score(detector=detector, images=images)

    monkeypatch.setattr(detection_services, "_images_score", flaky)
    submission = submission_make(contributor=contributor)
    assert len(calls) == 2
    assert submission.state == State.CLEARED


def test_a_persistent_transient_error_ends_as_failed_not_stuck(
    contributor, submission_make, force_verdict, monkeypatch
):
    from django.db import OperationalError

    force_verdict("real")

    def down(*, detector, images):
        raise OperationalError("database unreachable")

    monkeypatch.setattr(detection_services, "_images_score", down)
    submission = submission_make(contributor=contributor)
    assert submission.state == State.FAILED
    assert "Gave up after 5 retries" in submission.failure_reason


def test_an_unexpected_error_fails_the_submission_with_its_reason(
    contributor, submission_make, force_verdict, monkeypatch
):
    force_verdict("real")

    def broken(*, detector, images):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(detection_services, "_images_score", broken)
    submission = submission_make(contributor=contributor)
    assert submission.state == State.FAILED
    assert "CUDA out of memory" in submission.failure_reason


def test_the_sweeper_requeues_submissions_stuck_in_analysis(contributor, submission_make, force_verdict, settings):
    force_verdict("ai")
    stuck = submission_make(contributor=contributor)
    long_ago = timezone.now() - settings.ANALYSIS_STUCK_AFTER - timedelta(minutes=1)
    Submission.objects.filter(pk=stuck.pk).update(state=State.ANALYSING, state_changed_at=long_ago)
    recent = submission_make(contributor=contributor, data=image_bytes(seed=3))
    Submission.objects.filter(pk=recent.pk).update(state=State.QUEUED)

    requeued = analysis.submissions_requeue_stuck(older_than=settings.ANALYSIS_STUCK_AFTER)

    assert requeued == [stuck.pk]
    assert AuditEvent.objects.filter(submission=stuck, action="swept", actor=None).exists()
    assert submissions_sweep.apply().get() == 0  # the fresh one is not touched


def test_the_sweeper_sends_uploads_still_received_after_the_resend_delay_and_leaves_younger_ones(
    contributor, force_verdict, settings, django_capture_on_commit_callbacks
):
    force_verdict("ai")
    # Outside the capture the upload's after-commit send never runs: as if the broker had been away.
    owed, young = (
        services.submission_create(
            contributor=contributor, stream=io.BytesIO(image_bytes(seed=s)), original_name="p.jpg", scenery="sea"
        )
        for s in (1, 2)
    )
    long_ago = timezone.now() - settings.ANALYSIS_RESEND_AFTER - timedelta(seconds=1)
    Submission.objects.filter(pk=owed.pk).update(state_changed_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert submissions_sweep.apply().get() == 1

    assert Submission.objects.get(pk=owed.pk).state == State.FLAGGED
    assert Submission.objects.get(pk=young.pk).state == State.RECEIVED


def test_approving_a_flagged_submission_records_a_decision_and_an_audit_entry(
    contributor, moderator, submission_make, force_verdict
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    decision = services.submission_decide(
        submission_id=submission.pk,
        moderator=moderator,
        outcome="approve",
        reason_code="detector-false-positive",
        note="RAW file checked",
    )
    submission.refresh_from_db()
    assert submission.state == State.APPROVED
    assert decision.moderator == moderator
    event = AuditEvent.objects.filter(submission=submission).first()
    assert (event.action, event.actor, event.from_state, event.to_state) == (
        "decided",
        moderator,
        "flagged",
        "approved",
    )
    assert "RAW file checked" in event.reason


def test_a_second_decision_on_the_same_submission_is_refused(
    contributor, moderator, second_moderator, submission_make, force_verdict
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    services.submission_decide(
        submission_id=submission.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
    )
    with pytest.raises(services.TransitionRefused, match="rejected"):
        services.submission_decide(
            submission_id=submission.pk,
            moderator=second_moderator,
            outcome="approve",
            reason_code="verified-photograph",
        )
    assert Decision.objects.filter(submission=submission).count() == 1
    submission.refresh_from_db()
    assert submission.state == State.REJECTED


def test_a_reason_must_fit_the_outcome(contributor, moderator, submission_make, force_verdict):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    with pytest.raises(Invalid, match="not a reason for approve"):
        services.submission_decide(
            submission_id=submission.pk, moderator=moderator, outcome="approve", reason_code="ai-generated"
        )


def test_a_submission_cannot_be_decided_while_it_is_still_queued(
    contributor, moderator, submission_make, settings, tmp_path
):
    settings.DETECTOR_WEIGHTS_DIR = tmp_path / "none"
    submission = submission_make(contributor=contributor)
    Submission.objects.filter(pk=submission.pk).update(state=State.QUEUED)
    with pytest.raises(services.TransitionRefused):
        services.submission_decide(
            submission_id=submission.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
        )


def test_a_moderator_can_ask_another_model_for_a_second_opinion_without_moving_the_item(
    contributor, moderator, submission_make, force_verdict, django_capture_on_commit_callbacks
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    Detection.objects.all().delete()  # so the same tiny model counts as "another" model here
    with django_capture_on_commit_callbacks(execute=True):
        analysis.reanalysis_request(submission_id=submission.pk, model_name="tiny_mobilenet", actor=moderator)
    submission.refresh_from_db()
    assert submission.state == State.FLAGGED
    assert submission.detections.count() == 1
    actions = list(AuditEvent.objects.filter(submission=submission).values_list("action", flat=True))
    assert "re-analysis requested" in actions and "re-analysed" in actions


def test_asking_for_a_model_without_weights_is_refused(contributor, moderator, submission_make, force_verdict):
    force_verdict("real")
    submission = submission_make(contributor=contributor)
    with pytest.raises(Invalid, match="no trained weights for resnet50"):
        analysis.reanalysis_request(submission_id=submission.pk, model_name="resnet50", actor=moderator)


def test_a_heatmap_at_another_layer_is_made_on_demand_once(contributor, submission_make, force_verdict):
    force_verdict("real")
    submission = submission_make(contributor=contributor)
    detection = submission.detections.get()
    first = detection_services.heatmap_render(detection_id=detection.pk, layer="features.6")
    again = detection_services.heatmap_render(detection_id=detection.pk, layer="features.6")
    assert first.pk == again.pk
    with pytest.raises(ValueError, match="unknown Grad-CAM layer"):
        detection_services.heatmap_render(detection_id=detection.pk, layer="fc")
