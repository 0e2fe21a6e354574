"""What happens after an upload, in one place: moderation moves the submission through the lifecycle and
asks detection for a score and evidence; detection never moves a submission itself."""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from common.deferred import BrokerUnavailable, task_publish
from common.errors import Invalid
from detection import services as detection
from detection.models import Detection, Verdict
from detection.selectors import FLAGGING_VERDICTS, model_names_available, model_queue
from moderation.counters import submission_counts_refresh
from moderation.events import submission_event_emit
from moderation.lifecycle import TRANSITIONS, Action, State
from moderation.models import Submission
from moderation.services import TransitionRefused, submission_queue, submission_requeue, submission_transition
from webhooks.models import Event

logger = logging.getLogger(__name__)


def analyses_take(*, task_id: str, submission_id: int) -> list[int]:
    """The submissions analysis task `task_id` analyses, moved to analysing under its id: its own submission
    (queued, or taken by this very task before: a redelivery or a retry), the others it took on an earlier
    delivery, and more of those waiting in the queue, oldest first, up to ANALYSIS_BATCH_SIZE in all. [] when its
    submission was analysed, decided, deleted, or taken into another task's batch (whose run has it).

    A batch never waits to fill: it is what is queued now, so an upload on an idle worker is scored at once and,
    under load, the uploads that queued while one batch was scored make the next."""
    with transaction.atomic():
        # A plain lock on its own row: the transaction that queued it may not have committed yet.
        own = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if own is None or not (
            own.state == State.QUEUED or (own.state == State.ANALYSING and own.analysis_task_id == task_id)
        ):
            return []
        resumed = Submission.objects.filter(state=State.ANALYSING, analysis_task_id=task_id).exclude(pk=own.pk)
        taken = [own.pk, *resumed.values_list("pk", flat=True)]
        waiting = (
            Submission.objects.select_for_update(skip_locked=True)  # rows being queued or taken elsewhere: not ours
            .filter(state=State.QUEUED)
            .exclude(pk=own.pk)
            .order_by("state_changed_at", "pk")
            .values_list("pk", flat=True)
        )
        taken += list(waiting[: max(0, settings.ANALYSIS_BATCH_SIZE - len(taken))])
        # In upload order, so two batches take the statistics day counters in the same order (no deadlock).
        for pk in sorted(taken):
            submission_transition(submission_id=pk, action=Action.ANALYSIS_START, analysis_task_id=task_id)
    return taken


def analyses_fail(*, task_id: str, submission_id: int, reason: str) -> None:
    """End as failed the submission of analysis task `task_id` and every other one that task took."""
    taken = Submission.objects.filter(state=State.ANALYSING, analysis_task_id=task_id).values_list("pk", flat=True)
    for pk in {submission_id, *taken}:
        analysis_fail(submission_id=pk, reason=reason)


def analysis_fail(*, submission_id: int, reason: str) -> None:
    try:
        submission_transition(submission_id=submission_id, action=Action.FAIL, reason=reason, failure_reason=reason)
    except TransitionRefused:
        logger.info("submission %s left analysis before it could be marked failed", submission_id)


def spot_check_draw() -> float | None:
    """SPOT_CHECK_SHARE when a cleared upload is drawn for a moderator's spot check, else None. Only flagged
    uploads are otherwise reviewed, so without this random share the live error rates could not be estimated."""
    share = settings.SPOT_CHECK_SHARE
    return share if share > 0 and random.random() < share else None


def analyses_run(*, task_id: str, submission_id: int) -> None:
    """Analyse the batch analysis task `task_id` takes (analyses_take), scored together, and move each of them
    to cleared or flagged, with its own transition, audit entry and webhook; a submission whose analysis is
    refused ends as failed alone.

    Metadata declaring generative AI flags the submission whatever the detector says; camera metadata never
    clears one on its own, since it is easy to forge. Transient errors propagate so the task retries the batch;
    its submissions stay analysing under its id meanwhile.
    """
    taken = analyses_take(task_id=task_id, submission_id=submission_id)
    if not taken:  # its submission is done or another task's: nothing to load or score
        return
    submissions = list(Submission.objects.filter(pk__in=taken).order_by("pk"))
    for submission, analysis in zip(submissions, detection.analyses_compute(submissions=submissions), strict=True):
        if isinstance(analysis, detection.AnalysisRefused):
            analysis_fail(submission_id=submission.pk, reason=str(analysis))
        else:
            _analysis_record(submission_id=submission.pk, analysis=analysis)


def _analysis_record(*, submission_id: int, analysis: detection.Analysis) -> None:
    found = analysis.detection
    reason = (
        f"{found.model_name} {found.model_version}: AI probability {found.ai_probability:.3f}, verdict {found.verdict}"
    )
    verdict = found.verdict
    declared = analysis.declared_ai
    if declared is not None:
        verdict = Verdict.AI
        reason = f"Metadata declares generative AI ({declared.detail}); {reason}"
    to_state = State.FLAGGED if verdict in FLAGGING_VERDICTS else State.CLEARED
    spot_check = spot_check_draw() if to_state == State.CLEARED else None
    if spot_check is not None:
        reason = f"{reason}; drawn for a spot check (share {spot_check:g})"
    try:
        with transaction.atomic():
            submission_transition(
                submission_id=submission_id,
                action=Action.ANALYSE,
                to_state=to_state,
                reason=reason,
                ai_probability=found.ai_probability,
                verdict=verdict,
                spot_check_share=spot_check,
                suggested_scenery=analysis.suggested_scenery,
            )
            submission_event_emit(event=Event.SUBMISSION_ANALYSED, submission_id=submission_id)
            if to_state == State.FLAGGED:  # after the verdict, never before it: a moderator will want the heatmap
                detection.heatmap_schedule(detection=found)
    except TransitionRefused:
        logger.info("submission %s was finished by another run", submission_id)


def reanalysis_request(*, submission_id: int, model_name: str, actor: AbstractBaseUser) -> None:
    """Queue a second opinion from another model; the submission's state and queue position stay as they are."""
    if model_name not in model_names_available():
        raise Invalid(f"no trained weights for {model_name}", field="model")
    with transaction.atomic():
        submission = Submission.objects.get(pk=submission_id)
        audit_record(
            submission_id=submission.pk, actor=actor, action=Action.REANALYSIS_REQUEST, reason=f"with {model_name}"
        )
        task_publish(  # now, so a broker that is away undoes the request and the moderator is told
            "moderation.tasks.submission_reanalyse", submission_id, model_name, queue=model_queue(name=model_name)
        )


def reanalysis_run(*, submission_id: int, model_name: str) -> Detection:
    submission = Submission.objects.get(pk=submission_id)
    found = detection.detection_compute(submission=submission, model_name=model_name)
    # The new result may be the model's latest on the upload now: the statistics count it instead of the older.
    submission_counts_refresh(submission_id=submission_id)
    if found.verdict in FLAGGING_VERDICTS and not found.heatmaps.exists():
        detection.heatmap_schedule(detection=found)
    audit_record(
        submission_id=submission_id,
        actor=None,
        action=Action.REANALYSE,
        reason=f"{model_name} {found.model_version}: AI probability {found.ai_probability:.3f}, "
        f"verdict {found.verdict}",
    )
    return found


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
        except BrokerUnavailable:
            logger.warning("broker away: %s stuck submissions left for the next sweep", len(stuck) - len(requeued))
            break
        requeued.append(submission_id)
    return requeued


def submissions_resend_received(*, older_than: timedelta) -> list[int]:
    """Queue submissions still received after `older_than`: the broker was away when they were uploaded, so
    their message was never sent. Stops at the first refusal by the broker; the next sweep carries on."""
    cutoff = timezone.now() - older_than
    waiting = list(
        Submission.objects.filter(state=State.RECEIVED, state_changed_at__lt=cutoff)
        .order_by("state_changed_at")
        .values_list("pk", flat=True)[:500]
    )
    sent = []
    for submission_id in waiting:
        try:
            submission_queue(submission_id=submission_id, reason="Sent by the sweeper: the broker was away at upload.")
        except TransitionRefused:
            continue
        except BrokerUnavailable:
            logger.warning("broker away: %s received submissions left for the next sweep", len(waiting) - len(sent))
            break
        sent.append(submission_id)
    return sent


def heatmaps_resend_missing(*, older_than: timedelta) -> list[int]:
    """Ask again for the heatmap of flagged items still without one after `older_than` (its message was lost
    with a broker or a worker); rendering is idempotent, so a late first request costs nothing."""
    cutoff = timezone.now() - older_than
    missing = list(
        Detection.objects.filter(
            submission__state=State.FLAGGED,
            verdict__in=FLAGGING_VERDICTS,
            created_at__lt=cutoff,
            heatmaps__isnull=True,
        ).order_by("created_at")[:500]
    )
    for found in missing:
        detection.heatmap_schedule(detection=found)
    return [found.pk for found in missing]
