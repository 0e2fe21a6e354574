"""Writes for the detection domain: running analysis and recording its outcome."""

import logging
import time
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from detection.models import Detection
from detection.selectors import detection_reusable_get, model_active_name, thresholds_for
from moderation.models import State, Submission, Verdict
from moderation.services import TransitionRefused, submission_requeue, submission_transition

logger = logging.getLogger(__name__)

# Worth a retry: the database or the storage backend was briefly out of reach.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
FLAGGING_VERDICTS = {Verdict.AI, Verdict.UNCERTAIN}


def verdict_from(*, probability: float, low: float, high: float) -> str:
    if probability >= high:
        return Verdict.AI
    if probability < low:
        return Verdict.REAL
    return Verdict.UNCERTAIN


def analysis_start(*, submission_id: int) -> Submission | None:
    """Claim a queued submission; None when it was already analysed, decided or deleted (redelivery)."""
    try:
        return submission_transition(
            submission_id=submission_id,
            from_states=[State.QUEUED, State.ANALYSING],
            to_state=State.ANALYSING,
            action="analysis started",
        )
    except (TransitionRefused, Submission.DoesNotExist):
        return None


def analysis_fail(*, submission_id: int, reason: str) -> None:
    try:
        submission_transition(
            submission_id=submission_id,
            from_states=[State.QUEUED, State.ANALYSING],
            to_state=State.FAILED,
            reason=reason,
            failure_reason=reason,
        )
    except TransitionRefused:
        logger.info("submission %s left analysis before it could be marked failed", submission_id)


def _heatmap_save(*, detection_key: str, submission_id: int, png: bytes) -> str:
    return default_storage.save(f"heatmaps/{submission_id}/{detection_key}.png", ContentFile(png))


def _detection_compute(*, submission: Submission) -> Detection:
    # Torch is imported here, on the worker's path only.
    from detection.core.nets import GRADCAM_DEFAULT_LAYER
    from detection.core.preprocess import image_decode
    from detection.runtime import detector_get

    name = model_active_name()
    detector = detector_get(name=name)
    existing = Detection.objects.filter(
        submission=submission, model_name=name, model_version=detector.version
    ).first()
    if existing:
        return existing

    low, high = thresholds_for(model_name=name, card=detector.card, scenery=submission.scenery)
    reusable = detection_reusable_get(sha256=submission.sha256, model_name=name, model_version=detector.version)
    image = None
    if reusable:
        probability, latency_ms = reusable.ai_probability, 0.0
    else:
        with default_storage.open(submission.original.name, "rb") as fh:
            image = image_decode(fh.read())
        started = time.perf_counter()
        probability = float(detector.predict([image])[0])
        latency_ms = (time.perf_counter() - started) * 1000
    verdict = verdict_from(probability=probability, low=low, high=high)

    heatmap, layer = "", ""
    if verdict in FLAGGING_VERDICTS:
        if reusable and reusable.heatmap:
            heatmap, layer = reusable.heatmap.name, reusable.heatmap_layer
        else:
            if image is None:
                with default_storage.open(submission.original.name, "rb") as fh:
                    image = image_decode(fh.read())
            layer = GRADCAM_DEFAULT_LAYER[detector.card["arch"]]
            heatmap = _heatmap_save(
                detection_key=f"{name}-{detector.version}-{layer}",
                submission_id=submission.pk,
                png=detector.overlay(image, layer=layer),
            )
    detection, _ = Detection.objects.get_or_create(
        submission=submission,
        model_name=name,
        model_version=detector.version,
        defaults={
            "ai_probability": probability,
            "verdict": verdict,
            "threshold_low": low,
            "threshold_high": high,
            "latency_ms": latency_ms,
            "reused_from": reusable,
            "heatmap": heatmap,
            "heatmap_layer": layer,
        },
    )
    return detection


def analysis_run(*, submission_id: int) -> None:
    """Analyse one submission and move it to cleared or flagged; any permanent error ends it as failed.

    Transient errors propagate so the task retries them; the submission stays analysing meanwhile.
    """
    from detection.core.inference import NoTrainedWeights

    submission = analysis_start(submission_id=submission_id)
    if submission is None:
        return
    try:
        detection = _detection_compute(submission=submission)
    except TRANSIENT_ERRORS:
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

    to_state = State.FLAGGED if detection.verdict in FLAGGING_VERDICTS else State.CLEARED
    try:
        submission_transition(
            submission_id=submission_id,
            from_states=[State.ANALYSING],
            to_state=to_state,
            action="analysed",
            reason=(
                f"{detection.model_name} {detection.model_version}: AI probability "
                f"{detection.ai_probability:.3f}, verdict {detection.verdict}"
            ),
            ai_probability=detection.ai_probability,
            verdict=detection.verdict,
        )
    except TransitionRefused:
        logger.info("submission %s was finished by another run", submission_id)


def submissions_requeue_stuck(*, older_than: timedelta) -> list[int]:
    """Re-send submissions that sat in queued or analysing too long (a lost message, a killed worker)."""
    cutoff = timezone.now() - older_than
    stuck = list(
        Submission.objects.filter(state__in=[State.QUEUED, State.ANALYSING], state_changed_at__lt=cutoff)
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
                    from_states=[State.QUEUED, State.ANALYSING],
                    reason=f"No result after {older_than}; re-queued by the sweeper.",
                )
        except TransitionRefused:
            continue
        requeued.append(submission_id)
    return requeued
