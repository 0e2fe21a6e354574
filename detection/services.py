"""Writes for the detection domain: running analysis and recording its outcome."""

import logging
import time
from datetime import timedelta
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from detection.core.verdicts import verdict_for
from detection.models import Detection, Evidence, Heatmap
from detection.selectors import (
    detection_reusable_get,
    model_active_name,
    model_names_available,
    model_queue,
    thresholds_for,
)
from moderation.lifecycle import TRANSITIONS, Action
from moderation.models import State, Submission, Verdict
from moderation.services import TransitionRefused, audit_record, submission_requeue, submission_transition
from webhooks.services import webhook_event_emit

logger = logging.getLogger(__name__)

# Worth a retry: the database or the storage backend was briefly out of reach.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
FLAGGING_VERDICTS = {Verdict.AI, Verdict.UNCERTAIN}


def analysis_start(*, submission_id: int) -> Submission | None:
    """Claim a queued submission; None when it was already analysed, decided or deleted (redelivery)."""
    try:
        return submission_transition(
            submission_id=submission_id,
            action=Action.ANALYSIS_START,
        )
    except (TransitionRefused, Submission.DoesNotExist):
        return None


def analysis_fail(*, submission_id: int, reason: str) -> None:
    try:
        submission_transition(
            submission_id=submission_id,
            action=Action.FAIL,
            reason=reason,
            failure_reason=reason,
        )
    except TransitionRefused:
        logger.info("submission %s left analysis before it could be marked failed", submission_id)


def _original_read(submission: Submission) -> bytes:
    with default_storage.open(submission.original.name, "rb") as fh:
        return fh.read()


def _image_load(submission: Submission, *, data: bytes | None = None):
    from detection.core.preprocess import image_decode

    return image_decode(
        _original_read(submission) if data is None else data, max_pixels=settings.UPLOAD_MAX_PIXELS
    )


def heatmap_render(*, detection_id: int, layer: str | None = None, image=None) -> Heatmap:
    """The Grad-CAM overlay of a detection at a layer (the model's default when None), made at most once."""
    from detection.core.layers import gradcam_default_layer
    from detection.runtime import detector_get

    detection = Detection.objects.select_related("submission").get(pk=detection_id)
    detector = detector_get(name=detection.model_name)
    if detector.version != detection.model_version:
        raise ValueError(f"{detection.model_name} is now version {detector.version}, not {detection.model_version}")
    layer = layer or gradcam_default_layer(detector.card)
    existing = Heatmap.objects.filter(detection=detection, layer=layer).first()
    if existing:
        return existing
    earlier = Heatmap.objects.filter(detection=detection.reused_from_id, layer=layer).first()
    if earlier:  # identical bytes, same model version: the same picture
        return Heatmap.objects.get_or_create(detection=detection, layer=layer, defaults={"image": earlier.image.name})[
            0
        ]
    png = detector.overlay(image or _image_load(detection.submission), layer=layer)
    name = default_storage.save(
        f"heatmaps/{detection.submission_id}/{detection.model_name}-{detection.model_version}-{layer}.png",
        ContentFile(png),
    )
    heatmap, created = Heatmap.objects.get_or_create(detection=detection, layer=layer, defaults={"image": name})
    if not created:
        default_storage.delete(name)
    return heatmap


def detection_compute(*, submission: Submission, model_name: str, data: bytes | None = None) -> Detection:
    """Score a submission with one model, once per model version; a flagging score also gets a heatmap.

    `data` is the original's bytes when the caller has them already, so storage is read once per analysis.
    """
    from detection.runtime import detector_get

    detector = detector_get(name=model_name)
    existing = Detection.objects.filter(
        submission=submission, model_name=model_name, model_version=detector.version
    ).first()
    if existing:
        return existing

    low, high = thresholds_for(model_name=model_name, card=detector.card, scenery=submission.scenery)
    reusable = detection_reusable_get(sha256=submission.sha256, model_name=model_name, model_version=detector.version)
    image = None
    if reusable:
        probability, latency_ms = reusable.ai_probability, 0.0
    else:
        image = _image_load(submission, data=data)
        started = time.perf_counter()
        probability = float(detector.predict([image])[0])
        latency_ms = (time.perf_counter() - started) * 1000
    detection, _ = Detection.objects.get_or_create(
        submission=submission,
        model_name=model_name,
        model_version=detector.version,
        defaults={
            "ai_probability": probability,
            "verdict": verdict_for(probability, low=low, high=high),
            "threshold_low": low,
            "threshold_high": high,
            "latency_ms": latency_ms,
            "reused_from": reusable,
        },
    )
    if detection.verdict in FLAGGING_VERDICTS:
        # Grad-CAM only for images a human will look at; the others get one on demand.
        heatmap_render(detection_id=detection.pk, image=image)
    return detection


def evidence_record(*, submission: Submission, data: bytes | None = None) -> list[Evidence]:
    """Read provenance metadata once per submission; the extractor never raises on hostile metadata."""
    from detection.provenance import provenance_extract

    if not submission.evidence.exists():
        findings = provenance_extract(data=_original_read(submission) if data is None else data)
        Evidence.objects.bulk_create(
            [
                Evidence(
                    submission=submission, kind=f.kind, key=f.key, value=f.value, suggests=f.suggests, detail=f.detail
                )
                for f in findings
            ],
            ignore_conflicts=True,
        )
    return list(submission.evidence.all())


def analysis_run(*, submission_id: int) -> None:
    """Analyse one submission and move it to cleared or flagged; any permanent error ends it as failed.

    Metadata declaring generative AI flags the submission whatever the detector says; camera metadata never
    clears one on its own, since it is easy to forge. Transient errors propagate so the task retries them;
    the submission stays analysing meanwhile.
    """
    from detection.core.files import NoTrainedWeights
    from detection.runtime import ServedElsewhere

    submission = analysis_start(submission_id=submission_id)
    if submission is None:
        return
    try:
        data = _original_read(submission)
        evidence = evidence_record(submission=submission, data=data)
        detection = detection_compute(submission=submission, model_name=model_active_name(), data=data)
    except (*TRANSIENT_ERRORS, ServedElsewhere):
        raise
    except NoTrainedWeights as exc:
        analysis_fail(submission_id=submission_id, reason=str(exc))
        return
    except SoftTimeLimitExceeded:
        analysis_fail(submission_id=submission_id, reason="Analysis took longer than its time limit.")
        return
    except Exception as exc:
        logger.exception("analysis of submission %s failed", submission_id)
        analysis_fail(submission_id=submission_id, reason=f"Analysis error: {exc.__class__.__name__}: {exc}")
        return

    reason = (
        f"{detection.model_name} {detection.model_version}: AI probability "
        f"{detection.ai_probability:.3f}, verdict {detection.verdict}"
    )
    verdict = detection.verdict
    declared_by_metadata = [e for e in evidence if e.suggests == Evidence.Suggests.AI]
    if declared_by_metadata:
        verdict = Verdict.AI
        reason = f"Metadata declares generative AI ({declared_by_metadata[0].detail}); {reason}"
    try:
        with transaction.atomic():
            submission_transition(
                submission_id=submission_id,
                action=Action.ANALYSE,
                to_state=State.FLAGGED if verdict in FLAGGING_VERDICTS else State.CLEARED,
                reason=reason,
                ai_probability=detection.ai_probability,
                verdict=verdict,
            )
            webhook_event_emit(event="submission.analysed", submission_id=submission_id)
    except TransitionRefused:
        logger.info("submission %s was finished by another run", submission_id)


def reanalysis_request(*, submission_id: int, model_name: str, actor: AbstractBaseUser) -> None:
    """Queue a second opinion from another model; the submission's state and queue position stay as they are."""
    from detection.tasks import submission_reanalyse

    if model_name not in model_names_available():
        raise ValueError(f"no trained weights for {model_name}")
    with transaction.atomic():
        submission = Submission.objects.get(pk=submission_id)
        audit_record(submission=submission, actor=actor, action=Action.REANALYSIS_REQUEST, reason=f"with {model_name}")
        transaction.on_commit(
            partial(submission_reanalyse.apply_async, (submission_id, model_name), queue=model_queue(name=model_name))
        )


def reanalysis_run(*, submission_id: int, model_name: str) -> Detection:
    submission = Submission.objects.get(pk=submission_id)
    detection = detection_compute(submission=submission, model_name=model_name)
    audit_record(
        submission=submission,
        actor=None,
        action=Action.REANALYSE,
        reason=f"{model_name} {detection.model_version}: AI probability {detection.ai_probability:.3f}, "
        f"verdict {detection.verdict}",
    )
    return detection


def heatmap_request(*, detection_id: int, layer: str) -> None:
    from detection.tasks import heatmap_make

    model_name = Detection.objects.values_list("model_name", flat=True).get(pk=detection_id)
    transaction.on_commit(partial(heatmap_make.apply_async, (detection_id, layer), queue=model_queue(name=model_name)))


def submissions_requeue_stuck(*, older_than: timedelta) -> list[int]:
    """Re-send submissions that sat in queued or analysing too long (a lost message, a killed worker)."""
    cutoff = timezone.now() - older_than
    stuck = list(
        Submission.objects.filter(state__in=TRANSITIONS[Action.SWEEP].from_states, state_changed_at__lt=cutoff)
        .order_by("state_changed_at")
        .values_list("pk", flat=True)[:500]
    )
    requeued = []
    for submission_id in stuck:
        try:
            with transaction.atomic():
                submission_requeue(
                    submission_id=submission_id,
                    actor=None,
                    action=Action.SWEEP,
                    reason=f"No result after {older_than}; re-queued by the sweeper.",
                )
        except TransitionRefused:
            continue
        requeued.append(submission_id)
    return requeued
